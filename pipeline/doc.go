// Package pipeline runs goals through stages: a Pipeline, defined in Go
// or in the Python Heddle's YAML form (ParseConfig, LoadConfig), maps each
// goal's fields onto stage inputs, runs the stages level by level (stages
// whose inputs are ready run together), retries or skips them as
// configured, and publishes one final TaskResult for the goal.
//
// Pipelines share heddle.PipelineQueueGroup on heddle.SubjectGoalsIncoming,
// as Python pipelines do, so each goal runs once in a mixed mesh. A
// definition is checked whole before anything runs: every problem is
// listed in one *ConfigError naming the stage and field.
package pipeline
