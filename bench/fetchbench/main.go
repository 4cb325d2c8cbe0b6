// Command fetchbench measures what imapcopy's folder concurrency
// (Copier.Concurrency) gains or costs against a source that lets one FETCH
// per account run at a time, as Zimbra and Carbonio do (ImapCommandThrottle,
// imap_throttle_fetch): two loopback Dovecots, the source behind the fault
// proxy with IMAPRules.FetchPerAccount on or off, a cold copy per run into
// a reset destination. It prints the median wall time per concurrency and
// mode, how many FETCHes the throttle held back, and ratios taken within
// each round (robust to the drifting load of a shared machine).
// bench/fetch.sh builds and runs it.
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
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
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
	wall   time.Duration
	waits  int64
	waited time.Duration // FETCHes held back, summed
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
	proxies := make([]*faultproxy.Proxy, len(modes))
	for i, m := range modes {
		p, err := faultproxy.Listen(src.Addr, faultproxy.Options{IMAP: &faultproxy.IMAPRules{FetchPerAccount: m.throttle}})
		if err != nil {
			return err
		}
		defer p.Close()
		proxies[i] = p
	}
	// res[mode][concurrency] holds one result per round. Each round runs
	// every concurrency in both modes back to back, so that the load of a
	// shared machine, which drifts over minutes, weighs on all of them
	// alike; ratios are taken within a round.
	res := make([]map[int][]result, len(modes))
	for i := range res {
		res[i] = map[int][]result{}
	}
	for r := 0; r < runs; r++ {
		for _, c := range conc {
			for i, m := range modes {
				if err := dst.ResetUser(ctx, testserver.DefaultUser); err != nil {
					return err
				}
				srcAcct := *rules
				srcAcct.Addr = proxies[i].Addr()
				before := proxies[i].Stats()
				t0 := time.Now()
				st, err := (&imapcopy.Copier{Concurrency: c, Checkpoint: imapcopy.NewMemoryCheckpoint()}).Copy(ctx, &dstAcct, &srcAcct)
				wall := time.Since(t0)
				if err != nil {
					return fmt.Errorf("%s, concurrency %d: %w", m.name, c, err)
				}
				if tt := st.Totals(); tt.Copied != len(acc.Mail.Messages) || len(tt.Failed) != 0 {
					return fmt.Errorf("%s, concurrency %d: copied %d of %d, %d failed", m.name, c, tt.Copied, len(acc.Mail.Messages), len(tt.Failed))
				}
				after := proxies[i].Stats()
				res[i][c] = append(res[i][c], result{wall: wall, waits: after.FetchWaits - before.FetchWaits, waited: after.FetchWaited - before.FetchWaited})
				fmt.Printf("  round %d  %-32s concurrency %d: %v (%d FETCHes held, %v in all)\n", r+1, m.name, c, wall.Round(10*time.Millisecond),
					after.FetchWaits-before.FetchWaits, (after.FetchWaited - before.FetchWaited).Round(10*time.Millisecond))
			}
		}
	}
	fmt.Printf("\n| folder concurrency | throttled: median wall (runs) | FETCHes held | held time / wall | unthrottled: median wall (runs) | throttled / unthrottled (median of rounds) | throttled / throttled at %d (median of rounds) |\n", conc[0])
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	for _, c := range conc {
		th, un := res[0][c], res[1][c]
		var vsFree, vsOne, held []float64
		for r := range th {
			held = append(held, th[r].waited.Seconds()/th[r].wall.Seconds())
			vsFree = append(vsFree, th[r].wall.Seconds()/un[r].wall.Seconds())
			vsOne = append(vsOne, th[r].wall.Seconds()/res[0][conc[0]][r].wall.Seconds())
		}
		fmt.Printf("| %d | %v (%s) | %d | %.2f | %v (%s) | %.2f | %.2f |\n", c,
			median(th).Round(10*time.Millisecond), walls(th), medianWaits(th), medianF(held),
			median(un).Round(10*time.Millisecond), walls(un), medianF(vsFree), medianF(vsOne))
	}
	return nil
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
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
