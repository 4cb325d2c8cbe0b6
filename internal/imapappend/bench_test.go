package imapappend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

// TestAppendBench measures the append paths into a fresh Dovecot per run:
// go-imap single APPENDs pipelined 4 deep against Conn with
// MULTIAPPEND batches of 1, 16 and 64 messages. It runs only when
// ZXMIGRATE_APPENDBENCH is set (to the number of messages, "1" meaning
// 2000) and prints, per variant, the medians of ZXMIGRATE_APPENDBENCH_RUNS
// runs (default 3) of the client's CPU (this process, getrusage) and the
// Dovecot's (its master and reaped children, /proc/PID/stat). Run it
// without -race:
//
//	ZXMIGRATE_APPENDBENCH=1 go test -run TestAppendBench -v -timeout 30m ./internal/imapappend/
func TestAppendBench(t *testing.T) {
	env := os.Getenv("ZXMIGRATE_APPENDBENCH")
	if env == "" {
		t.Skip("set ZXMIGRATE_APPENDBENCH=1 (or a message count) to run")
	}
	n, _ := strconv.Atoi(env)
	if n <= 1 {
		n = 2000
	}
	runs := 3
	if r, err := strconv.Atoi(os.Getenv("ZXMIGRATE_APPENDBENCH_RUNS")); err == nil && r > 0 {
		runs = r
	}
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Seed: 3, Messages: n, Events: -1, Contacts: -1})
	msgs := acc.Mail.Messages
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Raw))
	}
	t.Logf("corpus: %d messages, %.1f MB, mean %.1f KB", len(msgs), float64(total)/1e6, float64(total)/1e3/float64(len(msgs)))

	type variant struct {
		name string
		run  func(t *testing.T, d *testserver.Dovecot) error
	}
	flagsOf := func(m corpus.Message) []imap.Flag {
		var out []imap.Flag
		for _, f := range m.Flags {
			if !strings.EqualFold(f, `\Recent`) {
				out = append(out, imap.Flag(f))
			}
		}
		return out
	}
	goimap := func(t *testing.T, d *testserver.Dovecot) error {
		cl, err := d.Dial(testserver.DefaultUser)
		if err != nil {
			return err
		}
		defer cl.Close()
		var inflight []*imapclient.AppendCommand
		for _, m := range msgs {
			cmd := cl.Append("INBOX", int64(len(m.Raw)), &imap.AppendOptions{Flags: flagsOf(m), Time: m.InternalDate})
			if _, err := cmd.Write(m.Raw); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			inflight = append(inflight, cmd)
			if len(inflight) >= 4 {
				if _, err := inflight[0].Wait(); err != nil {
					return err
				}
				inflight = inflight[1:]
			}
		}
		for _, cmd := range inflight {
			if _, err := cmd.Wait(); err != nil {
				return err
			}
		}
		return cl.Logout().Wait()
	}
	raw := func(batch int) func(t *testing.T, d *testserver.Dovecot) error {
		return func(t *testing.T, d *testserver.Dovecot) error {
			c, err := dovecotAccount(t, d, false, Plaintext).dial(context.Background())
			if err != nil {
				return err
			}
			defer c.Close()
			items := make([]Item, 0, batch)
			for start := 0; start < len(msgs); start += batch {
				items = items[:0]
				for _, m := range msgs[start:min(start+batch, len(msgs))] {
					items = append(items, Item{Flags: flagsOf(m), Time: m.InternalDate, Size: int64(len(m.Raw)), Body: bytes.NewReader(m.Raw)})
				}
				if _, uids, err := c.Append(context.Background(), "INBOX", items); err != nil || len(uids) != len(items) {
					return fmt.Errorf("append at %d: %d uids, %w", start, len(uids), err)
				}
			}
			return c.Close()
		}
	}
	variants := []variant{
		{"go-imap, 1 per APPEND, 4 in flight", goimap},
		{"Conn, batches of 1", raw(1)},
		{"Conn, batches of 16", raw(16)},
		{"Conn, batches of 64", raw(64)},
	}
	type sample struct{ wall, client, server time.Duration }
	results := make([][]sample, len(variants))
	for r := range runs {
		for vi, v := range variants {
			d, err := testserver.NewDovecot(context.Background(), testserver.DovecotOptions{Name: "appendbench"})
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			srv0 := procCPU(t, d.PID())
			cli0 := selfCPU()
			t0 := time.Now()
			err = v.run(t, d)
			wall := time.Since(t0)
			cli := selfCPU() - cli0
			waitNoChild(d.PID(), "imap")
			srv := procCPU(t, d.PID()) - srv0
			got := fetchCount(t, d)
			d.Close()
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			if got != len(msgs) {
				t.Fatalf("%s: %d messages stored, want %d", v.name, got, len(msgs))
			}
			results[vi] = append(results[vi], sample{wall, cli, srv})
			t.Logf("run %d %-36s wall %6.2fs client %6.2fs dovecot %6.2fs", r+1, v.name, wall.Seconds(), cli.Seconds(), srv.Seconds())
		}
	}
	med := func(s []sample, f func(sample) time.Duration) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i]).Seconds()
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| variant (%d msgs, %.0f MB) | client CPU s | Dovecot CPU s | total CPU s | wall s |\n|---|---|---|---|---|\n", len(msgs), float64(total)/1e6)
	for vi, v := range variants {
		c, s, w := med(results[vi], func(x sample) time.Duration { return x.client }), med(results[vi], func(x sample) time.Duration { return x.server }), med(results[vi], func(x sample) time.Duration { return x.wall })
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f |\n", v.name, c, s, c+s, w)
	}
	t.Log(b.String())
}

// fetchCount returns the number of messages in user1's INBOX.
func fetchCount(t *testing.T, d *testserver.Dovecot) int {
	cl, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sd, err := cl.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return int(sd.NumMessages)
}

// selfCPU returns this process's user+sys time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns utime+stime+cutime+cstime of pid.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var sum time.Duration
	for _, i := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		sum += time.Duration(n) * 10 * time.Millisecond
	}
	return sum
}

// waitNoChild waits (up to 10 s) until pid has no child process named
// comm: its CPU time is then in pid's cutime and cstime.
func waitNoChild(pid int, comm string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		found := false
		for _, k := range strings.Fields(string(kids)) {
			if c, _ := os.ReadFile("/proc/" + k + "/comm"); strings.TrimSpace(string(c)) == comm {
				found = true
			}
		}
		if !found {
			return
		}
	}
}
