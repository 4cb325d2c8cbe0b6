package caldav

// LegacyHash is the fingerprint used before the semantic comparison, for
// the real-server tests to show what it would have reported.
var LegacyHash = legacyHash
