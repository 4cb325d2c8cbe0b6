package migrate

import (
	"strings"
	"testing"
)

func TestFilesPlanKeysAndURLs(t *testing.T) {
	t.Setenv("ZXT_SRC", "x")
	t.Setenv("ZXT_DST", "y")
	y := strings.Replace(minimalPlan, "destination:\n", "destination:\n  files: {url: \"https://files.example.net\", max_file_mib: 5}\n", 1)
	p, err := ParsePlan(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if p.Destination.Files.URL != "https://files.example.net" || p.Destination.Files.MaxFileMiB != 5 {
		t.Fatalf("files endpoint = %+v", p.Destination.Files)
	}
	// Defaults: the source's admin URL, the origin of the destination's DAV URL.
	p = &Plan{Source: Endpoint{Admin: AdminEndpoint{URL: "https://zimbra.example.com:7071"}},
		Destination: Endpoint{DAV: DAVEndpoint{URL: "https://carbonio.example.net/dav/"}}}
	src, dst, err := p.filesURLs()
	if err != nil || src != "https://zimbra.example.com:7071" || dst != "https://carbonio.example.net" {
		t.Fatalf("filesURLs = %q, %q, %v", src, dst, err)
	}
	if _, _, err := (&Plan{}).filesURLs(); err == nil {
		t.Fatal("filesURLs without any URL succeeded")
	}
}
