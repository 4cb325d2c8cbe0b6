package carbonio

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// Source is the command line of a Zextras Suite source server (zxsuite),
// run locally or over SSH through a Runner. It creates the export that the
// destination restores from: the procedure's first step, run on the
// source as the zimbra user,
//
//	zxsuite backup doExport /tmp/export
//
// (zextras/tech-doc source/carbonio/migration/migration-from-zextras.rst,
// label mig-create-backup, removed at commit 6fe185a5; read it at
// 6fe185a5^). Zextras Suite's CLI has the same grammar as `carbonio
// backup` (zextras/tech-doc source/cli/ZxBackup/zxsuite_backup_doExport.rst:
// destination_path, then domains, cos, notifications, threshold,
// read_error_threshold, skip_items), and lists operations with `zxsuite core
// getAllOperations` and `getOperationLog` (source/cli/ZxCore/). So Source
// is a Client whose module transport is a *CLI with Program "zxsuite": the
// export is waited on exactly like a destination operation.
//
// The fields must be set before the first call; the methods are then safe
// for concurrent use when the Runner is.
type Source struct {
	// Runner runs the commands; nil means Local{} (this host). Use an
	// *SSH with RunAs "zimbra" for a remote source.
	Runner Runner
	// Program is the command; "" means "zxsuite".
	Program string
	// Logger receives diagnostics; nil is silent.
	Logger *slog.Logger
	// PollInterval and PollMax pace Wait as in Client (0: 2s and 30s).
	PollInterval, PollMax time.Duration
}

// client is the module client on the source's command line.
func (s *Source) client() *Client {
	prog := s.Program
	if prog == "" {
		prog = "zxsuite"
	}
	return &Client{Transport: &CLI{Runner: s.Runner, Program: prog}, Logger: s.Logger,
		PollInterval: s.PollInterval, PollMax: s.PollMax}
}

// Export starts `zxsuite backup doExport PATH [domains D,…]` and returns
// the queued operation; wait for it with Wait.
func (s *Source) Export(ctx context.Context, path string, o ExportOptions) (Operation, error) {
	return s.client().Export(ctx, path, o)
}

// Wait waits for an operation of the source (see Client.Wait).
func (s *Source) Wait(ctx context.Context, op Operation, onProgress func(Operation)) (Operation, error) {
	return s.client().Wait(ctx, op, onProgress)
}

// Operations lists the source's running and queued operations. It is also
// the cheapest proof that the command line answers.
func (s *Source) Operations(ctx context.Context) ([]Operation, error) {
	return s.client().Operations(ctx)
}

// RunningExport returns an export still queued or running on the source,
// so that a migration that stopped while waiting for one waits for it
// again instead of starting a second export into the same directory.
func (s *Source) RunningExport(ctx context.Context) (Operation, bool, error) {
	ops, err := s.Operations(ctx)
	if err != nil {
		return Operation{}, false, err
	}
	for _, op := range ops {
		if op.Done() {
			continue
		}
		if strings.Contains(strings.ToLower(op.Name), "export") {
			return op, true, nil
		}
	}
	return Operation{}, false, nil
}

// MakeDir creates the export directory on the source (`mkdir -p -m 0700
// PATH`, as the procedure's `mkdir /tmp/export/`), readable only by the
// user the commands run as: an export holds every account's settings.
func (s *Source) MakeDir(ctx context.Context, path string) error {
	r := s.Runner
	if r == nil {
		r = Local{}
	}
	_, err := r.Run(ctx, []string{"mkdir", "-p", "-m", "0700", "--", path})
	return err
}
