package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/dashboard"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// listenFlags configure the metrics and dashboard listener.
type listenFlags struct {
	addr      string
	tokenFile string
	tlsCert   string
	tlsKey    string
}

func (f *listenFlags) add(cmd *cobra.Command, name, usage string) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, name, "", usage)
	fl.StringVar(&f.tokenFile, "listen-token-file", "", "file holding the bearer token the listener requires (mode 0600; default: $"+dashboard.TokenEnv+"); needed for an address that is not loopback")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate: the listener serves HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	_ = cmd.MarkFlagFilename("listen-token-file")
	_ = cmd.MarkFlagFilename("tls-cert", "pem", "crt")
	_ = cmd.MarkFlagFilename("tls-key", "pem", "key")
}

// listen serves src and m on addr behind the listener's security.
func (f *listenFlags) listen(addr string, src dashboard.Source, m *dashboard.Metrics) (*dashboard.Server, error) {
	tok, err := dashboard.LoadToken(f.tokenFile)
	if err != nil {
		return nil, usageError{err}
	}
	s, err := dashboard.Listen(dashboard.Options{Addr: addr, Token: tok, TLSCert: f.tlsCert, TLSKey: f.tlsKey}, dashboard.Handler(src, m))
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// serveRun serves metrics and the live dashboard of r on f.addr (or the
// plan's listen key), adds the dashboard to r's event consumers and prints
// the URL on w. It returns the context to run r with (carrying the
// dashboard's observer of server operations), the URL ("" when nothing
// listens) and a function closing the listener.
func serveRun(ctx context.Context, w io.Writer, f *listenFlags, r *migrate.Runner) (runCtx context.Context, url string, stop func(), err error) {
	addr := f.addr
	if addr == "" {
		addr = r.Plan.Listen
	}
	if addr == "" {
		return ctx, "", func() {}, nil
	}
	counts := dashboard.StoreCounts(r.Plan.StatePath())
	m := dashboard.NewMetrics(counts)
	live := dashboard.NewLive(r.Plan, m, counts)
	s, err := f.listen(addr, live, m)
	if err != nil {
		return ctx, "", nil, err
	}
	prev := r.OnEvent
	r.OnEvent = func(ev migrate.Event) {
		if prev != nil {
			prev(ev)
		}
		live.OnEvent(ev)
	}
	fmt.Fprintf(w, "Dashboard: %s  (Prometheus metrics: %smetrics)\n", s.URL(), s.URL())
	return live.Context(ctx), s.URL(), func() { _ = s.Close() }, nil
}

// hold keeps the dashboard up until ctx ends (Ctrl-C).
func hold(ctx context.Context, w io.Writer, url string) {
	fmt.Fprintf(w, "Dashboard still at %s; press Ctrl-C to stop.\n", url)
	<-ctx.Done()
}
