package state

// davSchema holds the tables behind the caldav and carddav checkpoints (issue 4).
var davSchema = []string{}
