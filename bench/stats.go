package main

import "slices"

// spread is the median, minimum and maximum of a set of samples.
type spread struct {
	median, min, max float64
	n                int
}

// spreadOf summarises xs; the median of an even count is the mean of the
// two middle samples. An empty set gives n == 0.
func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return spread{median: med, min: s[0], max: s[len(s)-1], n: len(s)}
}

// ratios divides each traced sample by the bare sample of the same round.
// Rounds where either is missing (a failed run) are skipped.
func ratios(traced, bare []float64) []float64 {
	var out []float64
	for i := range min(len(traced), len(bare)) {
		if traced[i] > 0 && bare[i] > 0 {
			out = append(out, traced[i]/bare[i])
		}
	}
	return out
}
