package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// running finds an operation of the destination that is still queued or
// started and whose name contains one of hints (case and spaces ignored).
// A run that died while watching a SmartScan, restore or dedup then waits for
// that operation instead of starting a second one. When the list cannot be
// read, the phase starts a new operation as before.
func (b *serverBackend) running(ctx context.Context, hints ...string) (carbonio.Operation, bool) {
	ops, err := b.dstAdmin.Operations(ctx)
	if err != nil {
		return carbonio.Operation{}, false
	}
	for _, op := range ops {
		if op.Outcome != carbonio.OutcomeRunning {
			continue
		}
		name := strings.ToLower(op.Name)
		for _, h := range hints {
			if strings.Contains(name, h) || strings.Contains(strings.ReplaceAll(name, " ", ""), strings.ReplaceAll(h, " ", "")) {
				return op, true
			}
		}
	}
	return carbonio.Operation{}, false
}

// wait waits for op and records it in the phase result: the operation,
// its outcome, its raw state and type, and whether it was started over
// SOAP with unverified field names. Only a succeeded outcome is a success;
// a failed or unknown one (or a lost operation) fails the phase with an
// error that names the operation and its outcome.
func (b *serverBackend) wait(ctx context.Context, op carbonio.Operation, opErr error, unverified bool, rec *recorder) error {
	if opErr != nil {
		return opErr
	}
	note := ""
	if unverified {
		note = "; started over SOAP with unverified field names (destination.admin.unverified_soap)"
	}
	rec.add(func(r *PhaseResult) { r.Reason = fmt.Sprintf("operation %s %s: running%s", op.Name, op.ID, note) })
	final, err := b.dstAdmin.Wait(ctx, op, func(o carbonio.Operation) {
		rec.Progress(0, 0, 0)
	})
	if err != nil {
		if unverified {
			return fmt.Errorf("%w%s", err, note)
		}
		return err
	}
	rec.add(func(r *PhaseResult) {
		r.Reason = fmt.Sprintf("operation %s %s: outcome %s (state %q, type %q)%s", final.Name, final.ID, final.Outcome, final.State, final.Type, note)
	})
	return nil
}

// moduleChecks tells preflight how each destination module phase of the
// plan will run: on the command line, or over SOAP with unverified field
// names.
func (b *serverBackend) moduleChecks() []Check {
	if b.dstAdmin == nil {
		return nil
	}
	var out []Check
	for _, m := range []struct {
		ph             Phase
		module, action string
	}{{PhaseSmartScan, "ZxBackup", "doSmartScan"}, {PhaseProvisioning, "ZxBackup", "doExternalRestore"}, {PhaseDedup, "ZxPowerstore", "doDeduplicate"}} {
		if !b.p.HasPhase(m.ph) {
			continue
		}
		c := Check{Name: fmt.Sprintf("%s (%s %s)", m.ph, m.module, m.action), OK: true}
		switch err := b.dstAdmin.CanRun(m.module, m.action); {
		case err != nil:
			c.OK, c.Detail = false, err.Error()
		case b.unverified(m.module, m.action):
			c.Detail = "unverified: sent over SOAP with field names no public source shows (destination.admin.unverified_soap)"
		default:
			c.Detail = "carbonio command line (destination.cli)"
		}
		out = append(out, c)
	}
	return out
}

// unverified reports whether the client sends module/action over SOAP
// with guessed field names.
func (b *serverBackend) unverified(module, action string) bool {
	return b.dstAdmin.Unverified(carbonio.Command{Module: module, Action: action})
}

func (b *serverBackend) Global(ctx context.Context, ph Phase, p *Plan, accts []AccountPlan, rec *recorder) error {
	switch ph {
	case PhaseExport:
		return b.export(ctx, p, rec)
	case PhaseTransfer:
		return b.transfer(ctx, p, accts, rec)
	}
	if b.dstAdmin == nil {
		return errors.New("migrate: no destination admin API configured (destination.admin)")
	}
	switch ph {
	case PhaseMTAStop:
		return b.dstAdmin.MTA(ctx, false)
	case PhaseMTAStart:
		return b.dstAdmin.MTA(ctx, true)
	case PhaseSmartScan:
		uv := b.unverified("ZxBackup", "doSmartScan")
		if op, ok := b.running(ctx, "smartscan", "smart scan"); ok {
			return b.wait(ctx, op, nil, uv, rec)
		}
		op, err := b.dstAdmin.SmartScan(ctx, carbonio.SmartScanOptions{})
		return b.wait(ctx, op, err, uv, rec)
	case PhaseProvisioning:
		pr := p.Provisioning
		o := carbonio.RestoreOptions{
			Domains:                p.Domains,
			ProvisioningOnly:       pr.ProvisioningOnly == nil || *pr.ProvisioningOnly,
			ConcurrentAccounts:     pr.ConcurrentAccounts,
			SkipDomainProvisioning: pr.SkipDomainProvisioning,
			SkipDistributionLists:  pr.SkipDistributionLists,
			SkipCOSes:              pr.SkipCOS,
		}
		if p.Accounts.ListFile != "" || len(p.Accounts.Include) > 0 || len(p.Accounts.Exclude) > 0 {
			for _, a := range accts {
				o.Accounts = append(o.Accounts, a.Source)
			}
		}
		op, ok := b.running(ctx, "externalrestore", "external restore")
		var err error
		if !ok {
			op, err = b.dstAdmin.ExternalRestore(ctx, pr.BackupPath, o)
		}
		if err := b.wait(ctx, op, err, b.unverified("ZxBackup", "doExternalRestore"), rec); err != nil {
			return err
		}
		if len(p.Map.Domains) > 0 || len(p.Map.Accounts) > 0 {
			rec.add(func(r *PhaseResult) {
				r.Reason += "; note: the restore keeps source addresses, the address map applies to the copy phases"
			})
		}
		return nil
	case PhaseShares:
		return b.shares(ctx, accts, rec)
	case PhaseFiles:
		return b.files(ctx, accts, rec)
	case PhaseDedup:
		uv := b.unverified("ZxPowerstore", "doDeduplicate")
		if op, ok := b.running(ctx, "deduplicate", "dedup"); ok {
			return b.wait(ctx, op, nil, uv, rec)
		}
		op, err := b.dstAdmin.Deduplicate(ctx, p.Provisioning.DedupVolume, false)
		return b.wait(ctx, op, err, uv, rec)
	}
	return fmt.Errorf("migrate: %s is not a global phase", ph)
}
