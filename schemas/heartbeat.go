package schemas

// Heartbeat returns the JSON Schema of a worker's Heartbeat, published on
// heddle.workers.heartbeat.{worker_type}. The slice is a fresh copy.
func Heartbeat() []byte { return file("heartbeat.schema.json") }

// HeartbeatRegistry returns the JSON Schema of a worker registry's answer
// on heddle.workers.registry: its table of workers, or an error. Its
// $defs hold the Heartbeat schema too, so that it compiles alone. The
// slice is a fresh copy.
func HeartbeatRegistry() []byte { return file("heartbeat_registry.schema.json") }
