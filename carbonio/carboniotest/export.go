package carboniotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// A fake export is a directory tree shaped like a Zextras backup path
// (zextras/tech-doc, Zextras Suite backup chapter, "Backup Path": map
// files, accounts/<id>/account_info, items/). Its files are this package's
// own JSON, not Zextras' format: they carry what the fake restore needs,
// so that a test can copy the tree with real tools and have the
// destination fake see exactly what arrived.
type exportAccount struct {
	Name    string              `json:"name"`
	System  bool                `json:"system,omitempty"`
	Attrs   map[string][]string `json:"attrs,omitempty"`
	Folders []FixtureFolder     `json:"folders,omitempty"`
}

type exportList struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// WriteExport writes fx as a fake export into dir (created with mode
// 0700): map_<id>, domains/<d>/domain_info, accounts/<n>/account_info
// (with the account's aliases), distribution_lists/<n>/dl_info, and, when
// blobBytes > 0, one items/<xx>/<n> file of blobBytes pseudo-random bytes
// per account (the same bytes for the same account name).
func WriteExport(dir string, fx *Fixture, blobBytes int) error {
	write := func(rel string, b []byte) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o600)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("carboniotest: export: %w", err)
	}
	if err := write("map_00000000-0000-0000-0000-carboniotest", []byte("carboniotest fake export\n")); err != nil {
		return fmt.Errorf("carboniotest: export: %w", err)
	}
	for _, d := range fx.Domains {
		b, _ := json.Marshal(map[string]string{"name": strings.ToLower(d)})
		if err := write(filepath.Join("domains", strings.ToLower(d), "domain_info"), b); err != nil {
			return fmt.Errorf("carboniotest: export: %w", err)
		}
	}
	aliases := map[string][]string{}
	for _, a := range fx.Aliases {
		t := strings.ToLower(a.Target)
		aliases[t] = append(aliases[t], strings.ToLower(a.Name))
	}
	for i, a := range fx.Accounts {
		name := strings.ToLower(a.Name)
		acct := exportAccount{Name: name, System: a.System, Attrs: a.Attrs, Folders: a.Folders}
		b, _ := json.Marshal(map[string]any{"account": acct, "aliases": aliases[name]})
		id := fmt.Sprintf("%08d", i+1)
		if err := write(filepath.Join("accounts", id, "account_info"), b); err != nil {
			return fmt.Errorf("carboniotest: export: %w", err)
		}
		if blobBytes > 0 {
			h := fnv.New64a()
			h.Write([]byte(name))
			rnd := rand.New(rand.NewPCG(h.Sum64(), 1))
			blob := make([]byte, blobBytes)
			for j := range blob {
				blob[j] = byte(rnd.Uint32())
			}
			if err := write(filepath.Join("items", fmt.Sprintf("%02x", i%256), id), blob); err != nil {
				return fmt.Errorf("carboniotest: export: %w", err)
			}
		}
	}
	for _, l := range fx.DistributionLists {
		b, _ := json.Marshal(exportList{Name: strings.ToLower(l.Name), Members: l.Members})
		if err := write(filepath.Join("distribution_lists", strings.ToLower(l.Name), "dl_info"), b); err != nil {
			return fmt.Errorf("carboniotest: export: %w", err)
		}
	}
	return nil
}

// ReadExport reads a fake export written by WriteExport (or copied from
// one). Only what is on disk counts: an account whose account_info did not
// arrive is not in the result.
func ReadExport(dir string) (*Fixture, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("carboniotest: export: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("carboniotest: export %s is not a directory", dir)
	}
	fx := &Fixture{}
	read := func(sub, file string, fn func([]byte) error) error {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name(), file))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return fmt.Errorf("%s/%s/%s: %w", sub, e.Name(), file, err)
			}
		}
		return nil
	}
	err = read("domains", "domain_info", func(b []byte) error {
		var d struct{ Name string }
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		fx.Domains = append(fx.Domains, d.Name)
		return nil
	})
	if err == nil {
		err = read("accounts", "account_info", func(b []byte) error {
			var a struct {
				Account exportAccount `json:"account"`
				Aliases []string      `json:"aliases"`
			}
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			fx.Accounts = append(fx.Accounts, FixtureAccount{Name: a.Account.Name, System: a.Account.System,
				Attrs: a.Account.Attrs, Folders: a.Account.Folders})
			for _, al := range a.Aliases {
				fx.Aliases = append(fx.Aliases, FixtureAlias{Name: al, Target: a.Account.Name})
			}
			return nil
		})
	}
	if err == nil {
		err = read("distribution_lists", "dl_info", func(b []byte) error {
			var l exportList
			if err := json.Unmarshal(b, &l); err != nil {
				return err
			}
			fx.DistributionLists = append(fx.DistributionLists, FixtureList{Name: l.Name, Members: l.Members})
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("carboniotest: export %s: %w", dir, err)
	}
	sort.Slice(fx.Accounts, func(i, j int) bool { return fx.Accounts[i].Name < fx.Accounts[j].Name })
	return fx, nil
}

// ExportRunner returns a carbonio.Runner that runs commands like
// CLIRunner, with backup commands that meet real directories on this
// host:
//
//   - `backup doExport PATH [domains D]` also writes the server's directory
//     (of those domains) as a fake export into PATH (see WriteExport), with
//     blobBytes of item data per account;
//   - getAvailableAccounts, getAvailableDomains and doExternalRestore first
//     load the export found on disk at their path (see ReadExport), which
//     then replaces any backup of that path given in Options.Backups. With
//     nothing on disk at the path, only Options.Backups answers.
//
// It lets a test or the demo export on a fake source, copy the tree with
// rsync, and have the fake destination see only what arrived.
func (s *Server) ExportRunner(blobBytes int) carbonio.Runner {
	return exportRunner{s: s, blob: blobBytes}
}

type exportRunner struct {
	s    *Server
	blob int
}

// backupCommand finds the backup action and its path in argv.
func backupCommand(argv []string) (action, path string, domains []string) {
	args := argv[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		if args[0] == "--host" && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) < 2 || args[0] != "backup" {
		return "", "", nil
	}
	action, rest := args[1], args[2:]
	switch action {
	case "doExport", "doExternalRestore":
		if len(rest) > 0 {
			path, rest = rest[0], rest[1:]
		}
	case "getAvailableDomains":
		if len(rest) > 1 {
			path, rest = rest[1], rest[2:]
		}
	}
	for i := 0; i+1 < len(rest); i += 2 {
		switch rest[i] {
		case "backup_path":
			path = rest[i+1]
		case "domains":
			domains = splitList(rest[i+1])
		}
	}
	return action, path, domains
}

func (r exportRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(argv) > 0 && argv[0] == "mkdir" {
		// The export directory (`mkdir -p -m 0700 -- PATH`) on this host.
		if p := argv[len(argv)-1]; filepath.IsAbs(p) {
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, &carbonio.ExitError{Command: "mkdir", Code: 1, Stderr: err.Error()}
			}
			return nil, nil
		}
		return nil, &carbonio.ExitError{Command: "mkdir", Code: 1, Stderr: "mkdir: relative path"}
	}
	action, path, domains := backupCommand(argv)
	switch action {
	case "getAvailableAccounts", "getAvailableDomains", "doExternalRestore":
		if fi, err := os.Stat(path); path != "" && err == nil && fi.IsDir() {
			fx, err := ReadExport(path)
			if err != nil {
				return nil, &carbonio.ExitError{Command: "carbonio backup " + action, Code: 1, Stderr: err.Error()}
			}
			r.s.AddBackup(path, fx)
		} else if path != "" {
			// Gone from disk: what Options.Backups says, if anything.
			r.s.mu.Lock()
			if b, ok := r.s.opts.Backups[path]; ok {
				r.s.backups[path] = b
			} else {
				delete(r.s.backups, path)
			}
			r.s.mu.Unlock()
		}
	}
	out, err := cliRunner{r.s}.Run(ctx, argv)
	if err != nil || action != "doExport" || path == "" {
		return out, err
	}
	r.s.mu.Lock()
	fx := r.s.snapshot(domains)
	r.s.mu.Unlock()
	if err := WriteExport(path, fx, r.blob); err != nil {
		return nil, &carbonio.ExitError{Command: "zxsuite backup doExport", Code: 1, Stderr: err.Error()}
	}
	return out, nil
}
