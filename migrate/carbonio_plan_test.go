package migrate

import (
	"strings"
	"testing"
)

// TestValidateModulePhases: smartscan, provisioning and dedup need a
// destination command line, or the explicit SOAP opt-in; the error says
// what to configure. A DAV URL on an admin port is refused by name.
func TestValidateModulePhases(t *testing.T) {
	for _, ph := range []Phase{PhaseSmartScan, PhaseProvisioning, PhaseDedup} {
		p := fakePlan(t)
		p.Destination.Admin.UnverifiedSOAP = false
		p.Phases = []Phase{ph}
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), "destination.cli.mode") || !strings.Contains(err.Error(), "unverified_soap") {
			t.Errorf("%s without a command line: %v", ph, err)
		}
		p.Destination.CLI.Mode = "local"
		if err := p.Validate(); err != nil {
			t.Errorf("%s with cli mode local: %v", ph, err)
		}
		p.Destination.CLI.Mode = ""
		p.Destination.Admin.UnverifiedSOAP = true
		if err := p.Validate(); err != nil {
			t.Errorf("%s with unverified_soap: %v", ph, err)
		}
	}
	p := fakePlan(t)
	p.Destination.DAV.URL = "https://dst.example:7071/dav/"
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "destination.dav.url") || !strings.Contains(err.Error(), "admin port") {
		t.Errorf("DAV on the admin port: %v", err)
	}
	p.Phases = []Phase{PhaseMail}
	if err := p.Validate(); err != nil && strings.Contains(err.Error(), "dav.url") {
		t.Errorf("a plan without DAV phases complains about the DAV URL: %v", err)
	}
}
