// Package orchestrator serves goals: an Orchestrator takes each
// heddle.OrchestratorGoal from heddle.SubjectGoalsIncoming (in queue group
// heddle.OrchestratorQueueGroup, shared with Python orchestrators),
// decomposes it into subtasks with a DecomposeFunc, dispatches them,
// collects their results and publishes one final TaskResult for the goal,
// synthesized by a SynthesizeFunc, on heddle.ResultSubject(goal_id).
//
// Guarantees: every goal that decodes gets exactly one final result,
// failed with its reason when decomposition, a subtask or synthesis fails
// or the drain timeout cuts it short; at most Config.MaxConcurrentGoals
// goals run at once; Run returns after a drain bounded by
// Config.DrainTimeout.
package orchestrator
