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
	"github.com/spf13/pflag"
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

// env is what every subcommand gets: its streams, the process context and
// the global flags.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	g      globalFlags
}

// globalFlags are accepted by every command.
type globalFlags struct {
	logLevel  string // debug, info, warn, error
	logFormat string // text, json
	progress  string // auto, bars, plain, none
}

// debug reports whether the operator asked for details.
func (g *globalFlags) debug() bool { return g.logLevel == "debug" }

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "migrate",
		Short: "Migrate mail domains from Zextras Suite (Zimbra) to Carbonio",
		Long: `Migrate mail domains from Zextras Suite (Zimbra) to Carbonio: mail over IMAP, calendars and
contacts over CalDAV/CardDAV, provisioning through the Carbonio admin API.

A whole domain is a plan (YAML): 'migrate plan init plan.yaml' writes an annotated one.
Exit codes: 0 done and verified, 2 usage or configuration, 3 partial, 4 credentials refused,
5 server unreachable or not reachable securely, 130 interrupted, 1 internal error.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(c *cobra.Command, _ []string) error { return c.Help() },
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			return e.g.apply(c)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&e.g.logLevel, "log-level", "warn", "log level: debug (also shows the internal chain of an error), info, warn or error")
	pf.StringVar(&e.g.logFormat, "log-format", "text", "log format: text or json (logs go to stderr)")
	pf.StringVar(&e.g.progress, "progress", "auto", "progress display: auto (bars on a terminal), bars, plain or none")
	root.AddCommand(
		newMailCmd(e),
		newCalendarsCmd(e),
		newContactsCmd(e),
		newCarbonioCmd(e),
		newVersionCmd(e),
		newPlanCmd(e),
	)
	root.AddCommand(newOrchestratorCmds(e)...)
	root.AddCommand(newStatusCmd(e))
	root.AddCommand(newLimitsCmd(e))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd(args...)
	addExamples(root)
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	if err != nil && !isReported(err) {
		printError(stderr, err, e.g.debug()) // escapes server text (termsafe)
	}
	return code
}

// apply checks the global flags and folds the older verbosity flags of
// some commands (--debug, -v/--verbose) into --log-level: either spelling
// gives the same result.
func (g *globalFlags) apply(c *cobra.Command) error {
	for _, name := range []string{"debug", "verbose"} {
		if fl := c.Flags().Lookup(name); fl != nil && fl.Changed && fl.Value.String() == "true" {
			g.logLevel = "debug"
		}
	}
	switch g.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)}
	}
	switch g.logFormat {
	case "text", "json":
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", g.logFormat)}
	}
	switch g.progress {
	case "auto", "bars", "plain", "none":
	default:
		return usageError{fmt.Errorf("--progress %q: want auto, bars, plain or none", g.progress)}
	}
	if g.debug() {
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			if (fl.Name == "debug" || fl.Name == "verbose") && fl.Value.Type() == "bool" {
				_ = fl.Value.Set("true")
			}
		})
	}
	return nil
}
