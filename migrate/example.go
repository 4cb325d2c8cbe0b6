package migrate

import _ "embed"

//go:embed testdata/plan.example.yaml
var examplePlan []byte

// ExamplePlan returns an annotated plan: every section and key with its
// meaning, its default and the environment variables that hold the
// passwords. `migrate plan init` writes it; ParsePlan accepts it.
func ExamplePlan() []byte { return append([]byte(nil), examplePlan...) }
