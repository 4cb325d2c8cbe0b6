// Command wanbench measures `migrate mail` against mbsync through a delay
// line (internal/faultproxy.DelayLine) in front of each of two Dovecots, at
// several round-trip times: wall time, client CPU, the bytes each link
// carried each way, and the ratios. bench/wan.sh builds and runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

func main() {
	migrate := flag.String("migrate", "", "path of the migrate binary")
	mbsync := flag.String("mbsync", "mbsync", "path of mbsync (empty to skip)")
	messages := flag.Int("messages", 0, "corpus size (0: the 10,121-message reference)")
	rtts := flag.String("rtt", "0,5,20,50", "round-trip times to each server in ms, comma separated")
	deep := flag.Bool("deep", true, "also run migrate mail --deep-verify")
	work := flag.String("dir", "", "scratch directory (default: a temp dir)")
	flag.Parse()
	if *migrate == "" {
		fmt.Fprintln(os.Stderr, "wanbench: -migrate is required")
		os.Exit(2)
	}
	var list []time.Duration
	for _, f := range strings.Split(*rtts, ",") {
		ms, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || ms < 0 {
			fmt.Fprintf(os.Stderr, "wanbench: bad -rtt %q\n", f)
			os.Exit(2)
		}
		list = append(list, time.Duration(ms*float64(time.Millisecond)))
	}
	if err := bench(*migrate, *mbsync, *messages, list, *deep, *work); err != nil {
		fmt.Fprintln(os.Stderr, "wanbench:", err)
		os.Exit(1)
	}
}

// result is one timed run.
type result struct {
	tool             string
	rtt              time.Duration
	wall, cpu        time.Duration
	code             int
	srcRead, srcSent int64 // bytes from / to the source server
	dstRead, dstSent int64 // bytes from / to the destination server
}

func bench(migrate, mbsync string, messages int, rtts []time.Duration, deep bool, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "wanbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	src, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "wan-src"})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "wan-dst"})
	if err != nil {
		return err
	}
	defer dst.Close()
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Messages: messages, Events: -1, Contacts: -1})
	if err := src.Seed(ctx, testserver.DefaultUser, acc.Mail); err != nil {
		return err
	}
	var total int64
	for _, m := range acc.Mail.Messages {
		total += int64(len(m.Raw))
	}
	nmsg := len(acc.Mail.Messages)
	fmt.Printf("corpus: %d messages, %.1f MB; delay line in front of each server (half the RTT each way)\n", nmsg, float64(total)/1e6)
	acc = nil

	env := append(os.Environ(), "MIGRATE_FROM_PASSWORD="+testserver.DefaultPassword, "MIGRATE_TO_PASSWORD="+testserver.DefaultPassword)
	statePath := filepath.Join(dir, "state.db")
	reset := func() error {
		for _, f := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
			os.Remove(f)
		}
		os.RemoveAll(filepath.Join(dir, "mbsync"))
		return dst.ResetUser(ctx, testserver.DefaultUser)
	}
	var all []result
	for _, rtt := range rtts {
		opt := faultproxy.DelayOptions{Delay: rtt / 2}
		sl, err := faultproxy.ListenDelay(src.Addr, opt)
		if err != nil {
			return err
		}
		dl, err := faultproxy.ListenDelay(dst.Addr, opt)
		if err != nil {
			sl.Close()
			return err
		}
		base := []string{migrate, "mail", "--from", "imap://" + testserver.DefaultUser + "@" + sl.Addr(),
			"--to", "imap://" + testserver.DefaultUser + "@" + dl.Addr(), "--allow-plaintext", "--state", statePath}
		type variant struct {
			tool string
			env  []string
			argv []string
		}
		vs := []variant{{"migrate mail", env, base}}
		if deep {
			vs = append(vs, variant{"migrate mail --deep-verify", env, append(append([]string{}, base...), "--deep-verify")})
		}
		if mbsync != "" {
			rc := filepath.Join(dir, fmt.Sprintf("mbsyncrc-%d", rtt.Milliseconds()))
			if err := os.WriteFile(rc, []byte(mbsyncRC(sl.Addr(), dl.Addr(), filepath.Join(dir, "mbsync")+"/")), 0o600); err != nil {
				return err
			}
			vs = append(vs, variant{"mbsync", nil, []string{mbsync, "-c", rc, "AtoB"}})
		}
		for _, v := range vs {
			if err := reset(); err != nil {
				return err
			}
			os.MkdirAll(filepath.Join(dir, "mbsync"), 0o700)
			s0, d0 := sl.Stats(), dl.Stats()
			r, err := timed(v.env, v.argv...)
			if err != nil {
				sl.Close()
				dl.Close()
				return err
			}
			s1, d1 := sl.Stats(), dl.Stats()
			r.tool, r.rtt = v.tool, rtt
			r.srcRead, r.srcSent = s1.BytesToClient-s0.BytesToClient, s1.BytesToServer-s0.BytesToServer
			r.dstRead, r.dstSent = d1.BytesToClient-d0.BytesToClient, d1.BytesToServer-d0.BytesToServer
			fmt.Printf("rtt %v %s: %v, exit %d, client CPU %v, source link %.1f MB read / %.1f MB sent, destination link %.1f MB read / %.1f MB sent\n",
				rtt, v.tool, r.wall.Round(time.Millisecond), r.code, r.cpu.Round(10*time.Millisecond),
				mb(r.srcRead), mb(r.srcSent), mb(r.dstRead), mb(r.dstSent))
			all = append(all, r)
		}
		sl.Close()
		dl.Close()
	}

	fmt.Println()
	fmt.Println("| RTT | tool | wall | msg/s | client CPU | source link read | destination link sent | destination link read (× message bytes) | wall ratio to mbsync |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range all {
		ratio := "–"
		for _, m := range all {
			if m.tool == "mbsync" && m.rtt == r.rtt && r.tool != "mbsync" {
				ratio = fmt.Sprintf("%.2f (%.1f× faster)", r.wall.Seconds()/m.wall.Seconds(), m.wall.Seconds()/r.wall.Seconds())
			}
		}
		fmt.Printf("| %d ms | %s | %.2f s | %.0f | %.2f s | %.1f MB | %.1f MB | %.2f MB (%.3f×) | %s |\n",
			r.rtt.Milliseconds(), r.tool, r.wall.Seconds(), float64(nmsg)/r.wall.Seconds(), r.cpu.Seconds(),
			mb(r.srcRead), mb(r.dstSent), mb(r.dstRead), float64(r.dstRead)/float64(total), ratio)
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// timed runs argv and measures its wall time and user+sys CPU.
func timed(env []string, argv ...string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = env
	}
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{wall: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		r.code = ps.ExitCode()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil && r.code != 3 {
		return r, fmt.Errorf("%s: %v: %s", argv[0], err, tail(errb.String()+outb.String()))
	}
	return r, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// mbsyncRC configures the peer for the test user on both servers.
func mbsyncRC(srcAddr, dstAddr, state string) string {
	return testserver.MbsyncConfig(srcAddr, dstAddr, testserver.DefaultUser, testserver.DefaultPassword, testserver.DefaultPassword, state)
}
