// Command copymailbox copies one mailbox from one IMAP server to another
// with the imapcopy package: exact bytes, flags, keywords and INTERNALDATE,
// no duplicates on a re-run when given a state file.
//
//	SRC_PASSWORD=... DST_PASSWORD=... go run ./examples/copymailbox \
//	    -src imaps://alice@old.example.com -dst imaps://alice@new.example.com \
//	    -src-admin import-admin@old.example.com -state copy.db
//
// Passwords come from the environment only (with -src-admin/-dst-admin they
// are the admin's). TLS certificates are verified.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

func main() {
	srcURL := flag.String("src", "", "source mailbox, imaps://USER@HOST[:PORT] (imap:// for STARTTLS)")
	dstURL := flag.String("dst", "", "destination mailbox, imaps://USER@HOST[:PORT]")
	srcAdmin := flag.String("src-admin", "", "log in to the source as this admin on behalf of the user")
	dstAdmin := flag.String("dst-admin", "", "log in to the destination as this admin on behalf of the user")
	statePath := flag.String("state", "", "SQLite state file for resumable, duplicate-free re-runs (default: in memory)")
	flag.Parse()
	if *srcURL == "" || *dstURL == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := copyMailbox(ctx, *srcURL, *dstURL, *srcAdmin, *dstAdmin, *statePath); err != nil {
		log.Fatal(err)
	}
}

func copyMailbox(ctx context.Context, srcURL, dstURL, srcAdmin, dstAdmin, statePath string) error {
	src, err := imapcopy.ParseURL(srcURL)
	if err != nil {
		return err
	}
	dst, err := imapcopy.ParseURL(dstURL)
	if err != nil {
		return err
	}
	src.Admin, dst.Admin = srcAdmin, dstAdmin
	if src.Password, err = secret.Load("SRC_PASSWORD", ""); err != nil {
		return err
	}
	if dst.Password, err = secret.Load("DST_PASSWORD", ""); err != nil {
		return err
	}
	c := &imapcopy.Copier{
		OnEvent: func(ev imapcopy.Event) {
			if d, ok := ev.(imapcopy.FolderDone); ok {
				fmt.Printf("%-30s %5d copied %5d present %3d skipped %3d failed\n",
					d.Stats.Source, d.Stats.Copied, d.Stats.AlreadyPresent, len(d.Stats.SkippedItems), len(d.Stats.Failed))
			}
		},
	}
	if statePath != "" {
		st, err := migrate.OpenStore(ctx, statePath)
		if err != nil {
			return err
		}
		defer st.Close()
		c.Checkpoint = st.Mail(src.String() + " -> " + dst.String())
	}
	stats, err := c.Copy(ctx, dst, src)
	if err != nil {
		return err
	}
	if !stats.OK() {
		return fmt.Errorf("copy finished with skipped, failed or unverified messages")
	}
	fmt.Println("all messages copied and verified")
	return nil
}
