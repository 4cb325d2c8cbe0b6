// Command fetchbench measures what imapcopy's folder concurrency
// (Copier.Concurrency) gains or costs against a source that lets one FETCH
// per account run at a time, as Zimbra and Carbonio do (ImapCommandThrottle,
// imap_throttle_fetch): two loopback Dovecots, the source behind the fault
// proxy with IMAPRules.FetchPerAccount on or off, a cold copy per run into
// a reset destination. It prints the median wall time per concurrency and
// mode, and how many FETCHes the throttle held back. bench/fetch.sh builds
// and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/secret"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

func main() {
	messages := flag.Int("messages", 3000, "corpus size (0: the 10,121-message reference)")
	runs := flag.Int("runs", 3, "runs per measurement")
	levels := flag.String("concurrency", "1,2,3,4", "folder concurrencies to measure, comma separated")
	flag.Parse()
	var conc []int
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "fetchbench: bad concurrency %q\n", f)
			os.Exit(2)
		}
		conc = append(conc, n)
	}
	if err := bench(*messages, *runs, conc); err != nil {
		fmt.Fprintln(os.Stderr, "fetchbench:", err)
		os.Exit(1)
	}
}

type result struct {
	wall  time.Duration
	waits int64
}

func bench(messages, runs int, conc []int) error {
	ctx := context.Background()
	src, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "fb-src"})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "fb-dst"})
	if err != nil {
		return err
	}
	defer dst.Close()
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Messages: messages, Events: -1, Contacts: -1})
	if err := src.Seed(ctx, testserver.DefaultUser, acc.Mail); err != nil {
		return err
	}
	var total int64
	folders := map[string]bool{}
	for _, m := range acc.Mail.Messages {
		total += int64(len(m.Raw))
		folders[m.Folder] = true
	}
	host, _ := os.Hostname()
	fmt.Printf("corpus: %d messages in %d folders, %.1f MB; %d runs each; %s, %d CPUs, %s\n",
		len(acc.Mail.Messages), len(folders), float64(total)/1e6, runs, host, runtime.NumCPU(), runtime.Version())

	rules := &imapcopy.Account{Security: imapcopy.Plaintext, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
	dstAcct := *rules
	dstAcct.Addr = dst.Addr
	modes := []struct {
		name     string
		throttle bool
	}{{"one FETCH per account (Zimbra)", true}, {"no FETCH throttle", false}}
	res := map[string]map[int][]result{}
	for _, m := range modes {
		proxy, err := faultproxy.Listen(src.Addr, faultproxy.Options{IMAP: &faultproxy.IMAPRules{FetchPerAccount: m.throttle}})
		if err != nil {
			return err
		}
		srcAcct := *rules
		srcAcct.Addr = proxy.Addr()
		res[m.name] = map[int][]result{}
		// Interleave concurrencies within each round so that load on the
		// machine spreads over all of them.
		for r := 0; r < runs; r++ {
			for _, c := range conc {
				if err := dst.ResetUser(ctx, testserver.DefaultUser); err != nil {
					proxy.Close()
					return err
				}
				before := proxy.Stats().FetchWaits
				t0 := time.Now()
				st, err := (&imapcopy.Copier{Concurrency: c, Checkpoint: imapcopy.NewMemoryCheckpoint()}).Copy(ctx, &dstAcct, &srcAcct)
				wall := time.Since(t0)
				if err != nil {
					proxy.Close()
					return fmt.Errorf("%s, concurrency %d: %w", m.name, c, err)
				}
				if tt := st.Totals(); tt.Copied != len(acc.Mail.Messages) || len(tt.Failed) != 0 {
					proxy.Close()
					return fmt.Errorf("%s, concurrency %d: copied %d of %d, %d failed", m.name, c, tt.Copied, len(acc.Mail.Messages), len(tt.Failed))
				}
				r := result{wall: wall, waits: proxy.Stats().FetchWaits - before}
				res[m.name][c] = append(res[m.name][c], r)
				fmt.Printf("  %-32s concurrency %d: %v (%d FETCHes held)\n", m.name, c, wall.Round(10*time.Millisecond), r.waits)
			}
		}
		proxy.Close()
	}
	fmt.Printf("\n| folder concurrency |")
	for _, m := range modes {
		fmt.Printf(" %s: median wall | FETCHes held |", m.name)
	}
	fmt.Printf("\n|---|")
	for range modes {
		fmt.Printf("---|---|")
	}
	fmt.Println()
	for _, c := range conc {
		fmt.Printf("| %d |", c)
		for _, m := range modes {
			rs := res[m.name][c]
			fmt.Printf(" %v (%s) | %d |", median(rs).Round(10*time.Millisecond), walls(rs), medianWaits(rs))
		}
		fmt.Println()
	}
	return nil
}

func median(rs []result) time.Duration {
	ws := make([]time.Duration, len(rs))
	for i, r := range rs {
		ws[i] = r.wall
	}
	slices.Sort(ws)
	return ws[len(ws)/2]
}

func medianWaits(rs []result) int64 {
	ws := make([]int64, len(rs))
	for i, r := range rs {
		ws[i] = r.waits
	}
	slices.Sort(ws)
	return ws[len(ws)/2]
}

func walls(rs []result) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%.2f", r.wall.Seconds()))
	}
	return strings.Join(s, ", ")
}
