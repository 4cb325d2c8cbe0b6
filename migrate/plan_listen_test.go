package migrate

import (
	"strings"
	"testing"
)

func TestPlanListen(t *testing.T) {
	p, err := ParsePlan(strings.NewReader(minimalPlan + "\nlisten: 127.0.0.1:9464\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Listen != "127.0.0.1:9464" {
		t.Errorf("Listen = %q", p.Listen)
	}
}
