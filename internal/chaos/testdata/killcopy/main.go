// Command killcopy runs one imapcopy.Copy with a SQLite checkpoint, as the
// CLI would, so that the chaos tests can SIGKILL it at any moment and run
// it again. Everything comes from the environment (passwords included):
//
//	ZXM_SRC, ZXM_DST         host:port of the two IMAP servers (plaintext)
//	ZXM_USER                 the mailbox on both sides
//	ZXM_SRC_PASSWORD, ZXM_DST_PASSWORD
//	ZXM_STATE                the state file
//
// It prints the stats as JSON and exits 0 when every folder was copied and
// verified, 3 when some were not, 1 on error.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/secret"
	"github.com/zxmigrate/zxmigrate/internal/state"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx))
}

func run(ctx context.Context) int {
	user := os.Getenv("ZXM_USER")
	srcPW, err := secret.Load("ZXM_SRC_PASSWORD", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "killcopy:", err)
		return 1
	}
	dstPW, err := secret.Load("ZXM_DST_PASSWORD", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "killcopy:", err)
		return 1
	}
	st, err := state.Open(ctx, os.Getenv("ZXM_STATE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "killcopy:", err)
		return 1
	}
	defer st.Close()
	src := &imapcopy.Account{Addr: os.Getenv("ZXM_SRC"), Security: imapcopy.Plaintext, User: user, Password: srcPW}
	dst := &imapcopy.Account{Addr: os.Getenv("ZXM_DST"), Security: imapcopy.Plaintext, User: user, Password: dstPW}
	cp := &imapcopy.Copier{
		Checkpoint: st.Mail(src.String() + " -> " + dst.String()),
		Logger:     slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	stats, err := cp.Copy(ctx, dst, src)
	if stats != nil {
		_ = json.NewEncoder(os.Stdout).Encode(stats)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "killcopy:", err)
		return 1
	}
	for _, f := range stats.Folders {
		if f.Err != "" || len(f.Failed) > 0 || len(f.SkippedItems) > 0 || (f.Verify != nil && !f.Verify.OK()) {
			return 3
		}
	}
	return 0
}
