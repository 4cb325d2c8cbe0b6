// Command migrate moves mail domains from Zextras Suite (Zimbra) to Carbonio.
// It is a thin shell over the zxmigrate SDK: flags become SDK calls, and
// outcomes become exit codes in exactly one place (exitCode).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/internal/termsafe"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go handleSignals(sigs, cancel, os.Stderr) // run_signals.go: first signal stops softly, second at once
	stopProfile := startProfile(os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	signal.Stop(sigs)
	cancel()
	os.Exit(code)
}

// env is what every subcommand gets: its streams and the process context.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "migrate",
		Short:         "Migrate mail domains from Zextras Suite (Zimbra) to Carbonio",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newMailCmd(e),
		newCalendarsCmd(e),
		newContactsCmd(e),
		newCarbonioCmd(e),
	)
	root.AddCommand(newOrchestratorCmds(e)...)
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	if err != nil && !isReported(err) {
		fmt.Fprintf(stderr, "migrate: %s\n", termsafe.Error(err)) // error texts quote servers
	}
	return code
}
