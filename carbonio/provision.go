package carbonio

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Directory is the provisioning content of some domains: what a restore
// must create, or what a server holds. Names are lower-case addresses.
type Directory struct {
	Domains           []string // domain names
	Accounts          []string // account addresses
	Aliases           []Alias  // aliases with their targets
	DistributionLists []string // list addresses
}

// Directory reads the domains, accounts (without system accounts),
// aliases and distribution lists of domains (all domains when none).
func (c *Client) Directory(ctx context.Context, domains ...string) (*Directory, error) {
	if len(domains) == 0 {
		ds, err := c.Domains(ctx)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			domains = append(domains, d.Name)
		}
	}
	d := &Directory{}
	for _, dom := range domains {
		d.Domains = append(d.Domains, strings.ToLower(dom))
		accts, err := c.Accounts(ctx, dom, "zimbraIsSystemAccount", "zimbraIsSystemResource")
		if err != nil {
			return nil, err
		}
		for _, a := range accts {
			if !a.IsSystem() {
				d.Accounts = append(d.Accounts, strings.ToLower(a.Name))
			}
		}
		als, err := c.Aliases(ctx, dom)
		if err != nil {
			return nil, err
		}
		for _, a := range als {
			d.Aliases = append(d.Aliases, Alias{Name: strings.ToLower(a.Name), Target: strings.ToLower(a.Target)})
		}
		dls, err := c.DistributionLists(ctx, dom)
		if err != nil {
			return nil, err
		}
		for _, l := range dls {
			d.DistributionLists = append(d.DistributionLists, strings.ToLower(l.Name))
		}
	}
	return d, nil
}

// Diff compares one kind of directory entry.
type Diff struct {
	Expected   int      `json:"expected"`             // entries expected
	Found      int      `json:"found"`                // of those, entries found
	Missing    []string `json:"missing,omitempty"`    // expected entries not found
	Unexpected []string `json:"unexpected,omitempty"` // entries found but not expected
}

// ProvisioningReport is the outcome of CheckProvisioning.
type ProvisioningReport struct {
	Domains           Diff `json:"domains"`            // domains compared
	Accounts          Diff `json:"accounts"`           // accounts compared
	Aliases           Diff `json:"aliases"`            // aliases compared
	DistributionLists Diff `json:"distribution_lists"` // distribution lists compared
}

// OK reports whether nothing expected is missing. Unexpected entries (for
// example accounts created on the destination beforehand) do not fail the
// check; they are reported.
func (r *ProvisioningReport) OK() bool {
	return len(r.Domains.Missing)+len(r.Accounts.Missing)+len(r.Aliases.Missing)+len(r.DistributionLists.Missing) == 0
}

// String summarises the report on one line per kind.
func (r *ProvisioningReport) String() string {
	var b strings.Builder
	for _, k := range []struct {
		name string
		d    Diff
	}{{"domains", r.Domains}, {"accounts", r.Accounts}, {"aliases", r.Aliases}, {"distribution lists", r.DistributionLists}} {
		fmt.Fprintf(&b, "%s: %d expected, %d found, %d missing, %d unexpected\n", k.name, k.d.Expected, k.d.Found, len(k.d.Missing), len(k.d.Unexpected))
		for _, m := range k.d.Missing {
			fmt.Fprintf(&b, "  missing %s\n", m)
		}
		for _, m := range k.d.Unexpected {
			fmt.Fprintf(&b, "  unexpected %s\n", m)
		}
	}
	return b.String()
}

// CheckProvisioning compares expected (from the source directory or the
// backup's available accounts) with the destination's directory for the
// domains of expected, and reports what is missing and unexpected.
// Aliases compare by name and target.
func (c *Client) CheckProvisioning(ctx context.Context, expected Directory) (*ProvisioningReport, error) {
	doms := expected.Domains
	if len(doms) == 0 {
		seen := map[string]bool{}
		add := func(addr string) {
			if _, d, ok := strings.Cut(addr, "@"); ok && !seen[strings.ToLower(d)] {
				seen[strings.ToLower(d)] = true
				doms = append(doms, strings.ToLower(d))
			}
		}
		for _, a := range expected.Accounts {
			add(a)
		}
		for _, a := range expected.Aliases {
			add(a.Name)
		}
		for _, a := range expected.DistributionLists {
			add(a)
		}
	}
	if len(doms) == 0 {
		return nil, fmt.Errorf("carbonio: check provisioning: nothing expected")
	}
	all, err := c.Domains(ctx)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range all {
		have = append(have, strings.ToLower(d.Name))
	}
	r := &ProvisioningReport{}
	r.Domains = diff(doms, intersect(have, doms))
	var present []string
	for _, d := range doms {
		if slices.Contains(have, d) {
			present = append(present, d)
		}
	}
	got := &Directory{}
	if len(present) > 0 {
		if got, err = c.Directory(ctx, present...); err != nil {
			return nil, err
		}
	}
	r.Accounts = diff(expected.Accounts, got.Accounts)
	r.DistributionLists = diff(expected.DistributionLists, got.DistributionLists)
	aliasKey := func(as []Alias) []string {
		out := make([]string, 0, len(as))
		for _, a := range as {
			k := strings.ToLower(a.Name)
			if a.Target != "" {
				k += " -> " + strings.ToLower(a.Target)
			}
			out = append(out, k)
		}
		return out
	}
	// An expected alias without a target matches any target.
	exp := aliasKey(expected.Aliases)
	gotKeys := aliasKey(got.Aliases)
	for i, a := range expected.Aliases {
		if a.Target == "" {
			for _, g := range got.Aliases {
				if strings.EqualFold(g.Name, a.Name) {
					exp[i] = aliasKey([]Alias{g})[0]
				}
			}
		}
	}
	r.Aliases = diff(exp, gotKeys)
	return r, nil
}

func intersect(have, want []string) []string {
	var out []string
	for _, w := range want {
		if slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// diff compares two name sets case-insensitively.
func diff(want, got []string) Diff {
	w := map[string]bool{}
	for _, x := range want {
		w[strings.ToLower(x)] = true
	}
	g := map[string]bool{}
	for _, x := range got {
		g[strings.ToLower(x)] = true
	}
	d := Diff{Expected: len(w), Found: 0}
	for x := range w {
		if g[x] {
			d.Found++
		} else {
			d.Missing = append(d.Missing, x)
		}
	}
	for x := range g {
		if !w[x] {
			d.Unexpected = append(d.Unexpected, x)
		}
	}
	slices.Sort(d.Missing)
	slices.Sort(d.Unexpected)
	return d
}
