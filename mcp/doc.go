// Package mcp is the MCP gateway of a Heddle mesh: it offers worker types
// and pipelines as tools of a Model Context Protocol server, so that any
// MCP client (a desktop assistant, an IDE, an agent) can call them. It is
// built on the official Go SDK, github.com/modelcontextprotocol/go-sdk.
//
// A Config names the tools, in the shape of the Python Heddle's gateway
// config (ParseConfig, LoadConfig) or in Go:
//
//   - a worker tool sends its arguments as the payload of one task to a
//     worker type, through the router or straight to the worker (Direct),
//     and answers with the worker's output as structured content. Its
//     input schema is the worker's input contract, and the arguments are
//     checked against it before anything is published;
//   - a pipeline tool submits a goal, its instruction and context taken
//     from the arguments, addressed to the named pipeline
//     (dispatch.To), and answers with the pipeline's final output.
//
// Every call goes through package dispatch, the SDK's own caller, so a
// task the mesh cannot serve fails at once with its reason, a wait that
// times out names the tasks still pending, and the interceptors,
// propagator and observers configured with heddle.Option behave as for
// any caller. A W3C trace context a client sends in a call's _meta
// (traceparent, tracestate) becomes the task's or goal's _trace_context,
// through the propagator when there is one. Every
// failure reaches the MCP client as a tool error (IsError) whose text
// names the reason: the field of a contract violation, the dead-letter
// reason, the failed task's error, what was pending at a timeout. Its
// _meta holds the same under MetaKey, for programs.
//
// A Gateway serves MCP over stdio (ServeStdio), over streamable HTTP
// (Handler), or as an actor (Run) on the transport its Config names, next
// to workers and routers under heddle.Serve.
//
// The MCP SDK and what it brings (OAuth, JWT, a JSON Schema library of
// its own) are imported by this package alone, so they stay out of the
// build of every program that does not import it.
//
// The gateway reports each call once, as mcp.call_completed,
// mcp.call_failed or mcp.call_refused, to its logger and observers
// (heddle.WithLogger, heddle.WithObserver), with the tool, its kind, the
// task_id or goal_id, the reason and duration, and counts them in Stats.
package mcp
