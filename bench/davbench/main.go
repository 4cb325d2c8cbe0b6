// Command davbench supports bench/dav.sh: it seeds a Radicale storage
// directory directly (seeding over HTTP would take minutes) and measures the
// copy engine against in-process go-webdav servers (the client's own
// ceiling).
//
//	davbench seed-radicale DIR EVENTS CONTACTS
//	davbench inproc EVENTS CONTACTS
//	davbench copy FROM-URL TO-URL
//	davbench serve EVENTS CONTACTS SRC-PORT DST-PORT
//	davbench wan EVENTS CONTACTS RTTS-MS CONCURRENCIES RUNS
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-webdav"
	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtest"
	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "davbench:", err)
		os.Exit(1)
	}
}

func atoi(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad count %q", s)
	}
	return n, nil
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: davbench seed-radicale DIR EVENTS CONTACTS | inproc EVENTS CONTACTS")
	}
	switch args[0] {
	case "seed-radicale":
		if len(args) != 4 {
			return fmt.Errorf("usage: davbench seed-radicale DIR EVENTS CONTACTS")
		}
		ne, err := atoi(args[2])
		if err != nil {
			return err
		}
		nc, err := atoi(args[3])
		if err != nil {
			return err
		}
		return seedRadicale(args[1], ne, nc)
	case "copy":
		if len(args) != 3 {
			return fmt.Errorf("usage: davbench copy FROM TO")
		}
		return copyURLs(args[1], args[2])
	case "serve":
		if len(args) != 5 {
			return fmt.Errorf("usage: davbench serve EVENTS CONTACTS SRC-PORT DST-PORT")
		}
		ne, err := atoi(args[1])
		if err != nil {
			return err
		}
		nc, err := atoi(args[2])
		if err != nil {
			return err
		}
		return serve(ne, nc, args[3], args[4])
	case "wan":
		if len(args) != 6 {
			return fmt.Errorf("usage: davbench wan EVENTS CONTACTS RTTS-MS CONCURRENCIES RUNS")
		}
		ne, err := atoi(args[1])
		if err != nil {
			return err
		}
		nc, err := atoi(args[2])
		if err != nil {
			return err
		}
		rtts, err := parseList(args[3], func(s string) (time.Duration, error) {
			ms, err := strconv.ParseFloat(s, 64)
			return time.Duration(ms * float64(time.Millisecond)), err
		})
		if err != nil {
			return err
		}
		concs, err := parseList(args[4], strconv.Atoi)
		if err != nil {
			return err
		}
		runs, err := atoi(args[5])
		if err != nil {
			return err
		}
		return wan(ne, nc, rtts, concs, max(runs, 1))
	case "inproc":
		if len(args) != 3 {
			return fmt.Errorf("usage: davbench inproc EVENTS CONTACTS")
		}
		ne, err := atoi(args[1])
		if err != nil {
			return err
		}
		nc, err := atoi(args[2])
		if err != nil {
			return err
		}
		return inproc(ne, nc)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// seedMem fills a memdav source with ne events and nc contacts for user1.
func seedMem(src *memdav.Server, ne, nc int) error {
	cal := src.AddCalendar("user1", "bench-cal", "Bench")
	book := src.AddAddressBook("user1", "bench-book", "Bench")
	for i := 0; i < ne; i++ {
		if err := src.Put("user1", cal, fmt.Sprintf("gen-%04d.ics", i), davtest.GenEvent(i)); err != nil {
			return err
		}
	}
	for i := 0; i < nc; i++ {
		if err := src.Put("user1", book, fmt.Sprintf("gen-%04d.vcf", i), davtest.GenCard(i)); err != nil {
			return err
		}
	}
	return nil
}

// serve runs a seeded memdav source and an empty destination on loopback
// ports until killed, so that a client in another process can be measured
// alone with /usr/bin/time.
func serve(ne, nc int, sp, dp string) error {
	src, dst := memdav.New(), memdav.New()
	src.AddUser("user1", "pass1")
	dst.AddUser("user1", "pass1")
	if err := seedMem(src, ne, nc); err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- http.ListenAndServe("127.0.0.1:"+sp, src) }()
	go func() { errc <- http.ListenAndServe("127.0.0.1:"+dp, slowWrites(dst)) }()
	return <-errc
}

// slowWrites makes h behave like Radicale for the client: with
// DAVBENCH_PUT_DELAY set (a duration), each PUT is answered that much later,
// one at a time, and with DAVBENCH_CLOSE=1 every answer closes the
// connection (Radicale speaks HTTP/1.0).
func slowWrites(h http.Handler) http.Handler {
	delay, _ := time.ParseDuration(os.Getenv("DAVBENCH_PUT_DELAY"))
	closeConn := os.Getenv("DAVBENCH_CLOSE") == "1"
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closeConn {
			w.Header().Set("Connection", "close")
		}
		if r.Method == http.MethodPut && delay > 0 {
			mu.Lock()
			time.Sleep(delay)
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// copyURLs copies calendars and contacts from one server to another as
// user1/pass1, in one process (for profiling with DAVBENCH_CPUPROFILE).
func copyURLs(from, to string) error {
	ctx := context.Background()
	if p := os.Getenv("DAVBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	c0, t0 := cpu(), time.Now()
	n, err := copyBoth(ctx, from, to)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"objects": n, "seconds": time.Since(t0).Seconds(),
		"cpu_ms_per_obj": float64((cpu() - c0).Microseconds()) / 1000 / float64(max(n, 1))})
}

// copyBoth copies user1's calendars and address books from one server to
// another, the two copies side by side (as bench/dav.sh runs `migrate
// calendars` and `migrate contacts`), and returns the objects created.
// DAVBENCH_CONCURRENCY sets the copiers' Concurrency (0: the default);
// DAVBENCH_UNPACED=1 gives them an HTTP client without the per-host pacer.
func copyBoth(ctx context.Context, from, to string) (int, error) {
	conc, _ := strconv.Atoi(os.Getenv("DAVBENCH_CONCURRENCY"))
	pw := secret.New("pass1")
	var hc webdav.HTTPClient
	if os.Getenv("DAVBENCH_UNPACED") == "1" {
		hc = httpx.NewClient(httpx.Options{})
	}
	var cal, card *dav.Stats
	var g errgroup.Group
	g.Go(func() error {
		src, err := caldav.NewDAV(dav.Endpoint{URL: from, User: "user1", Password: pw, HTTPClient: hc})
		if err != nil {
			return err
		}
		dst, err := caldav.NewDAV(dav.Endpoint{URL: to, User: "user1", Password: pw, HTTPClient: hc})
		if err != nil {
			return err
		}
		cal, err = (&dav.Copier{Rules: caldav.Rules{}, Concurrency: conc}).Copy(ctx, dst, src)
		return err
	})
	g.Go(func() error {
		src, err := carddav.NewDAV(dav.Endpoint{URL: from, User: "user1", Password: pw, HTTPClient: hc})
		if err != nil {
			return err
		}
		dst, err := carddav.NewDAV(dav.Endpoint{URL: to, User: "user1", Password: pw, HTTPClient: hc})
		if err != nil {
			return err
		}
		card, err = (&dav.Copier{Rules: carddav.Rules{}, Concurrency: conc}).Copy(ctx, dst, src)
		return err
	})
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if !cal.OK() || !card.OK() {
		return 0, fmt.Errorf("copy not clean: calendars %+v, contacts %+v", cal.Totals(), card.Totals())
	}
	return cal.Totals().Created + card.Totals().Created, nil
}

// seedRadicale writes user1's calendar "bench-cal" and address book
// "bench-book" into a Radicale filesystem storage root.
func seedRadicale(dir string, ne, nc int) error {
	root := filepath.Join(dir, "collections", "collection-root", "user1")
	cal := filepath.Join(root, "bench-cal")
	book := filepath.Join(root, "bench-book")
	for _, d := range []string{cal, book} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(cal, ".Radicale.props"), []byte(`{"C:supported-calendar-component-set": "VEVENT,VTODO", "D:displayname": "Bench", "tag": "VCALENDAR"}`), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(book, ".Radicale.props"), []byte(`{"D:displayname": "Bench", "tag": "VADDRESSBOOK"}`), 0o600); err != nil {
		return err
	}
	for i := 0; i < ne; i++ {
		if err := os.WriteFile(filepath.Join(cal, fmt.Sprintf("gen-%04d.ics", i)), davtest.GenEvent(i), 0o600); err != nil {
			return err
		}
	}
	for i := 0; i < nc; i++ {
		if err := os.WriteFile(filepath.Join(book, fmt.Sprintf("gen-%04d.vcf", i)), davtest.GenCard(i), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inproc copies ne events and nc contacts between two in-process memdav
// servers over loopback HTTP and prints objects per second.
func inproc(ne, nc int) error {
	ctx := context.Background()
	start := func() (*memdav.Server, *httptest.Server) {
		s := memdav.New()
		s.AddUser("user1", "pass1")
		return s, httptest.NewServer(s)
	}
	src, sts := start()
	defer sts.Close()
	_, dts := start()
	defer dts.Close()
	if err := seedMem(src, ne, nc); err != nil {
		return err
	}
	if p := os.Getenv("DAVBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if p := os.Getenv("DAVBENCH_TRACE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		trace.Start(f)
		defer trace.Stop()
	}
	c0, t0 := cpu(), time.Now()
	n, err := copyBoth(ctx, sts.URL+"/", dts.URL+"/")
	if err != nil {
		return err
	}
	wall, used := time.Since(t0), cpu()-c0
	if n != ne+nc {
		return fmt.Errorf("copied %d objects, want %d", n, ne+nc)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"objects":                n,
		"seconds":                wall.Seconds(),
		"objects_per_second":     float64(n) / wall.Seconds(),
		"process_cpu_ms_per_obj": float64(used.Microseconds()) / 1000 / float64(n),
	})
}
