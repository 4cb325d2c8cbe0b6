package carbonio_test

import (
	"errors"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

func TestCommandLineTransport(t *testing.T) {
	ssh, err := carbonio.ParseSSH("root@mbox.example.com:2222")
	if err != nil {
		t.Fatal(err)
	}
	if ssh.User != "root" || ssh.Addr != "mbox.example.com:2222" {
		t.Errorf("ParseSSH: user %q addr %q", ssh.User, ssh.Addr)
	}
	for _, bad := range []string{"mbox.example.com", "@host", "root@"} {
		if _, err := carbonio.ParseSSH(bad); err == nil {
			t.Errorf("ParseSSH(%q) gave no error", bad)
		}
	}

	if tr, err := (carbonio.CommandLine{}).Transport(); tr != nil || err != nil {
		t.Errorf("zero CommandLine: %v, %v; want nil, nil (SOAP only)", tr, err)
	}
	if _, err := (carbonio.CommandLine{Local: true, SSH: ssh}).Transport(); !errors.Is(err, carbonio.ErrTwoCommandLines) {
		t.Errorf("Local and SSH: %v, want ErrTwoCommandLines", err)
	}

	tr, err := carbonio.CommandLine{Local: true, RunAs: "zextras", Program: "/opt/zextras/bin/carbonio"}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := tr.Runner.(carbonio.Local); !ok || l.User != "zextras" || tr.MTACtl != "/opt/zextras/bin/zmmtactl" {
		t.Errorf("local: runner %#v, MTACtl %q", tr.Runner, tr.MTACtl)
	}

	tr, err = carbonio.CommandLine{SSH: ssh, RunAs: "zextras", Program: "carbonio"}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Runner != carbonio.Runner(ssh) || ssh.RunAs != "zextras" || tr.MTACtl != "" {
		t.Errorf("ssh: runner %#v (RunAs %q), MTACtl %q", tr.Runner, ssh.RunAs, tr.MTACtl)
	}

	// A Runner of the caller's own wins over Local and SSH.
	own := carbonio.Local{User: "someone"}
	tr, err = carbonio.CommandLine{Runner: own, Local: true, SSH: ssh}.Transport()
	if err != nil || tr.Runner != carbonio.Runner(own) {
		t.Errorf("own Runner: %#v, %v", tr, err)
	}
}
