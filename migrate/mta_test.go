package migrate

import (
	"strings"
	"testing"
	"time"
)

// TestMTAPlanOptions: the mta block parses, and the start command follows
// the plan's command line as `migrate carbonio mta start` takes it.
func TestMTAPlanOptions(t *testing.T) {
	p, err := ParsePlan(strings.NewReader(minimalPlan + "mta: {restart_on_interrupt: true, restart_timeout: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.MTA.RestartOnInterrupt || p.MTA.restartTimeout() != 5*time.Second {
		t.Errorf("mta = %+v", p.MTA)
	}
	if p.MTA = (MTAOptions{}); p.MTA.restartTimeout() != DefaultMTARestartTimeout {
		t.Errorf("zero restart_timeout gives %s", p.MTA.restartTimeout())
	}
	for _, tc := range []struct {
		cli  CLIEndpoint
		want string
	}{
		{CLIEndpoint{Mode: "local"}, "migrate carbonio mta start --local-cli"},
		{CLIEndpoint{Mode: "ssh", SSH: SSHEndpoint{Address: "mta.example.com:2222", User: "root", KnownHostsFile: "/etc/zx known", KeyFiles: []string{"/k1"}, RunAs: "zextras"}},
			"migrate carbonio mta start --ssh root@mta.example.com:2222 --ssh-known-hosts '/etc/zx known' --ssh-key /k1 --run-as zextras"},
		{CLIEndpoint{}, "zmmtactl start (as the zextras user on the destination MTA node)"},
	} {
		p.Destination.CLI = tc.cli
		if got := p.MTAStartCommand(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.cli, got, tc.want)
		}
	}
}
