package pipeline

import (
	"slices"
	"strings"
)

// levels groups the stages by Kahn's algorithm: each level holds the
// stages whose dependencies are all in earlier levels, sorted by name. A
// cycle is reported naming its stages in order.
func (c *checker) levels(stages map[string]*pipelineStage) [][]string {
	indegree := map[string]int{}
	dependents := map[string][]string{}
	for name, s := range stages {
		indegree[name] += 0
		for _, d := range s.deps {
			if stages[d] == nil {
				continue
			}
			indegree[name]++
			dependents[d] = append(dependents[d], name)
		}
	}
	var levels [][]string
	for len(indegree) > 0 {
		var ready []string
		for name, n := range indegree {
			if n == 0 {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			c.add("", "pipeline_stages", "dependency cycle: %s; break it by removing a path or depends_on entry",
				strings.Join(findCycle(stages, indegree), " -> "))
			return levels
		}
		slices.Sort(ready)
		for _, name := range ready {
			delete(indegree, name)
			for _, d := range dependents[name] {
				indegree[d]--
			}
		}
		levels = append(levels, ready)
	}
	return levels
}

// findCycle returns one cycle among the stages left in remaining
// (every one of them has an unmet dependency), as a closed walk a -> b ->
// a starting from the smallest name.
func findCycle(stages map[string]*pipelineStage, remaining map[string]int) []string {
	names := make([]string, 0, len(remaining))
	for n := range remaining {
		names = append(names, n)
	}
	slices.Sort(names)
	// Walk dependencies from a remaining stage until a stage repeats; the
	// walk never leaves the remaining set, since a remaining stage has a
	// remaining dependency.
	walk := []string{names[0]}
	at := map[string]int{names[0]: 0}
	for cur := names[0]; ; {
		next := ""
		for _, d := range stages[cur].deps {
			if _, ok := remaining[d]; ok {
				next = d
				break
			}
		}
		if i, ok := at[next]; ok {
			// Stage cur depends on next: the cycle, written in execution
			// order, runs from next forward.
			cycle := slices.Clone(walk[i:])
			slices.Reverse(cycle)
			first := slices.Index(cycle, slices.Min(cycle))
			cycle = append(cycle[first:], cycle[:first]...)
			return append(cycle, cycle[0])
		}
		at[next] = len(walk)
		walk = append(walk, next)
		cur = next
	}
}
