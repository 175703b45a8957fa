package storetest

// modelRegressions are sequences run before the random ones on every
// store: a bug fixed becomes a sequence the model would have found.
var modelRegressions = []struct {
	name string
	ops  []Op
}{}
