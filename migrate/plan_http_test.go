package migrate

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The DAV endpoint's HTTP keys reach the plan, and bad values are refused.
func TestPlanDAVHTTPKeys(t *testing.T) {
	const dav = `
  dav:
    url: https://dav.example.com/dav/
    trusted_origins: [https://dav2.example.com:8443]
    idle_timeout: 5m
    max_multistatus_mib: 256
    max_object_mib: 32
    max_export_mib: 512
`
	plan := strings.Replace(minimalPlan, "destination:", dav+"destination:", 1)
	p, err := ParsePlan(strings.NewReader(plan))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Source.DAV
	if diff := cmp.Diff(got.TrustedOrigins, []string{"https://dav2.example.com:8443"}); diff != "" {
		t.Errorf("trusted_origins (-got +want):\n%s", diff)
	}
	if got.IdleTimeout != 5*time.Minute || got.MaxMultistatusMiB != 256 || got.MaxObjectMiB != 32 || got.MaxExportMiB != 512 {
		t.Errorf("dav keys: %+v", got)
	}
	bad := strings.Replace(plan, "max_object_mib: 32", "max_object_mib: -1", 1)
	if _, err := ParsePlan(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "source.dav") {
		t.Errorf("negative max_object_mib: %v, want an error naming source.dav", err)
	}
}
