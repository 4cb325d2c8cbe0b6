package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples holds the Example text of every command, by command path
// without the leading "migrate ". They live in one place so that the help
// of all commands reads alike.
var examples = map[string]string{
	"": `  migrate plan init plan.yaml && migrate plan check plan.yaml
  migrate preflight --plan plan.yaml
  migrate run --plan plan.yaml
  migrate mail --from imaps://alice@zimbra.example.com --to imaps://alice@carbonio.example.com --state alice.db`,
	"mail": `  # One mailbox, resumable; passwords from the environment:
  MIGRATE_FROM_PASSWORD=... MIGRATE_TO_PASSWORD=... migrate mail \
    --from imaps://alice@zimbra.example.com --to imaps://alice@carbonio.example.com --state alice.db

  # As admins on behalf of the user, with a private CA, leaving Junk behind:
  migrate mail --from imaps://alice@zimbra.example.com --from-admin admin@example.com \
    --to imaps://alice@carbonio.example.com --to-admin admin@carbonio.local \
    --ca-file ca.pem --exclude Junk --state alice.db --report alice.json

  # What would be copied, without writing:
  migrate mail --from imaps://alice@old --to imaps://alice@new --dry-run`,
	"calendars": `  MIGRATE_FROM_PASSWORD=... MIGRATE_TO_PASSWORD=... migrate calendars \
    --from https://old.example.com/dav/ --from-user alice \
    --to https://carbonio.example.com/dav/alice@example.com/ --to-user alice --state dav.db

  # Last pass before the cut-over: also delete what the source no longer has
  migrate calendars --from ... --to ... --state dav.db --delete`,
	"contacts": `  MIGRATE_FROM_PASSWORD=... MIGRATE_TO_PASSWORD=... migrate contacts \
    --from https://old.example.com/dav/ --from-user alice \
    --to https://carbonio.example.com/dav/alice@example.com/ --to-user alice --state dav.db

  # Zimbra source read over REST as admin; Carbonio written with a DelegateAuth token:
  migrate contacts --from https://zimbra:7071 --from-user admin@example.com --from-rest-account alice@example.com \
    --to https://carbonio.example.com/dav/alice@example.com/ --to-carbonio-admin https://carbonio:7071 \
    --to-user admin@carbonio.local --to-account alice@example.com`,
	"carbonio": `  MIGRATE_CARBONIO_PASSWORD=... migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local accounts
  migrate carbonio --ssh root@carbonio --run-as zextras mta stop`,
	"carbonio accounts":            `  migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local accounts --domain example.com`,
	"carbonio folders":             `  migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local folders alice@example.com`,
	"carbonio smartscan":           `  migrate carbonio --ssh root@carbonio --run-as zextras smartscan`,
	"carbonio restore":             `  migrate carbonio --ssh root@carbonio --run-as zextras restore /opt/zextras/export --domains example.com --provisioning-only`,
	"carbonio dedup":               `  migrate carbonio --ssh root@carbonio --run-as zextras dedup --dry-run`,
	"carbonio operations":          `  migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local operations`,
	"carbonio wait":                `  migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local wait 8f3c2a`,
	"carbonio stop":                `  migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local stop 8f3c2a`,
	"carbonio verify-provisioning": `  MIGRATE_FROM_PASSWORD=... migrate carbonio --url https://carbonio:7071 --user admin@carbonio.local verify-provisioning --from-url https://zimbra:7071 --from-user admin@example.com`,
	"carbonio mta":                 `  migrate carbonio --ssh root@carbonio --run-as zextras mta stop`,
	"carbonio export":              `  migrate carbonio --ssh root@zimbra --run-as zimbra --carbonio-path zxsuite export /opt/zimbra/backup/export`,
	"demo":                         `  migrate demo --out /tmp/zxdemo`,
	"preflight": `  migrate preflight --plan plan.yaml
  migrate preflight --plan plan.yaml --account alice@example.com --json`,
	"run": `  migrate run --plan plan.yaml
  migrate run --plan plan.yaml --retry-failed
  migrate run --plan plan.yaml --phases mail --delta      # daily pre-stage
  migrate run --plan plan.yaml --delta --delete           # cut-over pass

  # Any number of runners on any number of hosts share one PostgreSQL state:
  MIGRATE_STATE_PASSWORD_FILE=/run/secrets/pg migrate run --plan plan.yaml \
    --state 'postgres://zxmigrate@db.example.com:5432/zxmigrate?sslmode=verify-full'`,
	"status": `  migrate status --plan plan.yaml
  migrate status --state 'postgres://zxmigrate@db.example.com/zxmigrate' --watch 5s
  migrate status --state state.db --json
  migrate status --state state.db --serve 127.0.0.1:8080`,
	"limits": `  migrate limits --state 'postgres://zxmigrate@db.example.com/zxmigrate'
  migrate limits --state 'postgres://zxmigrate@db.example.com/zxmigrate' set source.imap 8
  migrate limits --plan plan.yaml set http_rate:zimbra.example.com 20`,
	"verify": `  migrate verify --plan plan.yaml --account alice@example.com`,
	"report": `  migrate report --plan plan.yaml
  migrate report --state state.db --format html > report.html
  migrate report --from report.json --out reports/`,
	"version": `  migrate version`,
	"help":    `  migrate help run`,
	"completion": `  migrate completion bash > /etc/bash_completion.d/migrate
  migrate completion zsh > "${fpath[1]}/_migrate"`,
	"completion bash":       `  migrate completion bash > /etc/bash_completion.d/migrate`,
	"completion zsh":        `  migrate completion zsh > "${fpath[1]}/_migrate"`,
	"completion fish":       `  migrate completion fish > ~/.config/fish/completions/migrate.fish`,
	"completion powershell": `  migrate completion powershell | Out-String | Invoke-Expression`,
	"plan":                  `  migrate plan init plan.yaml && migrate plan check plan.yaml`,
	"plan init":             `  migrate plan init plan.yaml`,
	"plan check":            `  migrate plan check plan.yaml --secrets`,
}

// addExamples sets the Example of every command from examples, and adds
// the note about concurrent runs to the commands that copy.
func addExamples(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
		if ex, ok := examples[path]; ok && c.Example == "" {
			c.Example = ex
		}
		switch path {
		case "mail", "calendars", "contacts", "run":
			c.Long = strings.TrimRight(c.Long, "\n") + "\n\n" + concurrentRunsNote
		}
		// carbonio's -v/--verbose is an older spelling of --log-level
		// debug (see globalFlags.apply); it still works, unlisted.
		if c.PersistentFlags().Lookup("verbose") != nil {
			_ = c.PersistentFlags().MarkDeprecated("verbose", "use --log-level debug")
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
