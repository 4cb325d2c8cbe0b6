// Command fakecli is a fake carbonio (also zxsuite and zmmtactl, by the
// name it is called with) for tests of the CLI transport over a real SSH
// server. It forwards its command line to a carboniotest.Server, named in
// fakecli.json next to the program (see Server.WriteCLIConfig), and prints
// the answer.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfgPath := filepath.Join(filepath.Dir(os.Args[0]), "fakecli.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakecli: %v\n", err)
		return 3
	}
	var cfg carboniotest.CLIConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "fakecli: %s: %v\n", cfgPath, err)
		return 3
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cfg.CACert))
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	argv := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	body, _ := json.Marshal(map[string]any{"argv": argv})
	req, err := http.NewRequest(http.MethodPost, cfg.URL+"/fakecli", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakecli: %v\n", err)
		return 3
	}
	req.Header.Set("X-Fakecli-Key", cfg.Key)
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakecli: %v\n", err)
		return 3
	}
	defer resp.Body.Close()
	var ans carboniotest.CLIAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		fmt.Fprintf(os.Stderr, "fakecli: server answered %s\n", resp.Status)
		return 3
	}
	os.Stdout.WriteString(ans.Stdout)
	os.Stderr.WriteString(ans.Stderr)
	return ans.Code
}
