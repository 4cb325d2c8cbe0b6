package zxerrors_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Callers tell the failures apart with errors.Is, whichever package
// returned them; the cause stays in the chain for errors.As.
func Example() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more

	a := &imapcopy.Account{Addr: addr, User: "alice", Password: secret.New("pw")}
	_, err = a.Dial(context.Background())
	var op *net.OpError
	switch {
	case errors.Is(err, zxerrors.ErrAuth):
		fmt.Println("check the password")
	case errors.Is(err, zxerrors.ErrTLS):
		fmt.Println("check the certificate")
	case errors.Is(err, zxerrors.ErrUnreachable):
		fmt.Println("check the address and the network; cause found:", errors.As(err, &op))
	}
	// Output:
	// check the address and the network; cause found: true
}
