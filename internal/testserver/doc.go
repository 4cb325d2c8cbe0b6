// Package testserver runs real Dovecot, Radicale and Xandikos servers for
// tests and benchmarks: each is a child process of the caller, listening on
// free 127.0.0.1 ports, with its configuration and data in a fresh directory
// under the system temp dir (short paths: Dovecot's socket paths must stay
// under 108 bytes). Nothing reads /etc/dovecot or touches system services.
//
// Quick start in a test:
//
//	d := testserver.StartDovecot(t, testserver.DovecotOptions{})
//	err := d.Seed(ctx, "user1", corpus.Generate("user1", corpus.Options{Messages: 500}).Mail)
//	got, err := d.Snapshot(ctx, "user1")
//
//	r := testserver.StartRadicale(t, map[string]string{"user1": "pass1"})
//	err = testserver.SeedDAV(ctx, r.CalendarHome("user1"), "user1", "pass1", cals, books)
//
// StartXxx take a testing.TB, register the shutdown with t.Cleanup, print
// the server log when the test failed, and skip the test when the server
// binary is missing — or fail it when the environment variable CI is set, so
// CI never passes without the real servers. NewXxx are the same without
// testing.TB, for benchmark programs; the caller must Close.
//
// Servers start with Setpgid and Pdeathsig (SIGTERM), so they die with the
// test binary; Close sends SIGTERM to the process group and waits, with a
// bounded wait and SIGKILL after it. Readiness is checked by dialing (IMAP
// greeting, HTTP /health or an HTTP answer) for at most StartTimeout; a
// server that exits or does not answer in time gives an error naming the
// server and quoting the end of its log.
//
// The types are safe for concurrent use once started.
package testserver
