//go:build race

package appd

// raceEnabled is true when the race detector, which multiplies memory use, is on.
const raceEnabled = true
