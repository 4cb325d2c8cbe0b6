package state

// mailSchema holds the tables behind imapcopy's checkpoint (issue 3).
var mailSchema = []string{}
