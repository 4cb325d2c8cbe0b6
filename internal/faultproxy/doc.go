// Package faultproxy injects network faults between a client and a server in
// tests: a TCP proxy on 127.0.0.1 that resets, stalls, slows down, injects
// bytes, refuses connections and caps their number, with an optional IMAP
// mode that behaves like a Zimbra/Carbonio server (IMAPRules, including its
// one-FETCH-per-account throttle), an http.Handler (HTTP) that answers 503
// or resets connections around a reverse proxy, and one (DoSFilter) that
// refuses requests over a rate per client address as Jetty's DoSFilter
// does in front of Zimbra and Carbonio.
//
// Faults are planned per connection by a Schedule; Random draws them from a
// seeded PCG per connection index, so a seed reproduces a run. Stats counts
// the faults that fired; tests print them as the "faults injected" figures.
//
// Quick start:
//
//	p, err := faultproxy.Listen(serverAddr, faultproxy.Options{
//		Schedule: faultproxy.Random{Seed: 1, Rate: 0.3, MinOffset: 100, MaxOffset: 200_000},
//		IMAP:     faultproxy.ZimbraRules(),
//	})
//	if err != nil {
//		t.Fatal(err)
//	}
//	defer p.Close()
//	// dial p.Addr() instead of serverAddr ...
//	t.Logf("faults: %v", p.Stats())
//
// Why not Toxiproxy: its toxics (reset_peer, timeout, bandwidth, slicer)
// cover resets and slow links, but not byte injection, a connection cap that
// answers with an IMAP BYE, IMAP-aware rules or seeded per-connection
// schedules, and it brings an HTTP API server and metrics dependencies.
package faultproxy
