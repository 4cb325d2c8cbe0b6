//go:build race

package hostiledav

const raceEnabled = true
