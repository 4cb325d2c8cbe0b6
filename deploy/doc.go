// Package deploy holds what runs zxmigrate on many hosts against one shared
// PostgreSQL state: the Kubernetes manifests in deploy/kubernetes (a Job of
// runner pods, the plan in a ConfigMap, credentials in a Secret) and the
// systemd template unit in deploy/systemd for plain virtual machines.
// docs/scale-out.md is the runbook.
//
// The package has no Go API. Its tests are the manifests' validator: every
// manifest is decoded strictly into the Kubernetes API types (an unknown or
// misspelt field fails), the pod template is held to the restricted security
// profile with resource requests and limits, secrets are kept out of argv,
// references between the objects must resolve, and the plan in the ConfigMap
// must pass the project's own plan parser.
package deploy
