// Package codec gives the module's own packages the entry points of the
// root's codec that are not part of its API: decoding a task's envelope
// alone (a router), decoding a task with its payload's bytes (a typed
// worker), and appending a result's wire form to a buffer (a worker).
//
// The root package sets the variables when it is initialised, which Go
// does before any package importing it: a package reads each once into a
// typed variable of its own (see router and worker). They are plain
// values of type any because this package cannot name the root's types.
package codec

var (
	// DecodeTaskEnvelope is a func([]byte) (heddle.TaskMessage, error):
	// heddle.DecodeTaskMessage's verdict and error, leaving Payload and
	// Metadata nil (checked, not built).
	DecodeTaskEnvelope any
	// DecodeTaskPayload is a func([]byte) (heddle.TaskMessage, []byte,
	// error): heddle.DecodeTaskMessage, also returning the payload's bytes
	// within data (nil when the message is rejected).
	DecodeTaskPayload any
	// AppendTaskResult is a func(*heddle.TaskResult, []byte) ([]byte,
	// error): the result's wire form appended to the buffer, as
	// TaskResult.MarshalJSON writes it.
	AppendTaskResult any
)
