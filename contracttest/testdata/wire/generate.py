#!/usr/bin/env python3
"""Regenerates the golden wire fixtures and manifest.json in this directory.

Run it from this directory: python3 generate.py. The Python-style documents
are written with json.dumps defaults (", " and ": " separators, ensure_ascii),
which is how the Python Heddle mesh publishes model_dump(mode="json"); the
Go-style ones are compact UTF-8. Only the .json files are embedded in the
contracttest package.
"""
import json, os, base64, collections
O = collections.OrderedDict
manifest = []

def py(obj):
    # What the Python mesh publishes: json.dumps of model_dump(mode="json").
    return json.dumps(obj).encode()

def write(path, data, typ, valid, note, fields=None, want=None, want_original=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)
    e = O(file=path, type=typ, valid=valid, note=note)
    if fields is not None: e["fields"] = fields
    if want is not None: e["want"] = want
    if want_original is not None: e["want_original_base64"] = base64.b64encode(want_original).decode()
    manifest.append(e)

T1 = "3f2b8c1e-9a4d-4e5f-8b6a-1c2d3e4f5a6b"
G1 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
T2 = "7d9e2f10-4b3a-4c8d-9e1f-2a3b4c5d6e7f"
NOW = "2026-02-09T10:15:30.123456Z"

def tm(**kw):
    m = O(task_id=T1, parent_task_id=None, worker_type="summarizer", payload=O(text="Heddle routes tasks."),
          model_tier="standard", priority="normal", max_retries=2, retry_count=0, created_at=NOW,
          request_id=None, metadata=O())
    m.update(kw)
    return m

# ---------------- TaskMessage, valid ----------------
d = "task_message/"
write(d+"python_default.json", py(tm()), "TaskMessage", True,
      "TaskMessage(worker_type='summarizer', payload={...}) as the Python mesh publishes it: every field, null parent_task_id and request_id",
      want=O(parent_task_id=None, request_id=None, model_tier="standard", priority="normal", max_retries=2, metadata=O()))
write(d+"python_subtask.json", py(tm(task_id=T2, parent_task_id=G1, worker_type="doc_extractor",
      payload=O(file_ref="s3://bucket/report.pdf", pages=[1, 2, 3], options=O(ocr=True, language=None)),
      model_tier="frontier", priority="critical", retry_count=1, max_retries=3, request_id="req-20260209-0001",
      metadata=O(stage="extract", pipeline="doc_pipeline", hints=O(max_tokens=4096))) ), "TaskMessage", True,
      "a subtask an orchestrator dispatched for goal " + G1 + ", with a request_id, metadata, a retry, tier frontier and priority critical",
      want=O(parent_task_id=G1, request_id="req-20260209-0001", model_tier="frontier", priority="critical", retry_count=1))
write(d+"minimal.json", '{"worker_type":"echo","payload":{}}', "TaskMessage", True,
      "only the required fields: defaults fill the rest (a fresh task_id and created_at, tier standard, priority normal, 2 retries)",
      want=O(parent_task_id=None, model_tier="standard", priority="normal", max_retries=2, retry_count=0, request_id=None, metadata=O(), payload=O()))
write(d+"tier_local_priority_low.json", py(tm(model_tier="local", priority="low")), "TaskMessage", True,
      "tier local, priority low", want=O(model_tier="local", priority="low"))
write(d+"tier_standard_priority_high.json", py(tm(model_tier="standard", priority="high")), "TaskMessage", True,
      "tier standard, priority high", want=O(model_tier="standard", priority="high"))
uni = O(text="Gr\u00fc\u00dfe, \u4e16\u754c \U0001F30D", rtl="\u0645\u0631\u062d\u0628\u0627", family="\U0001F468\u200D\U0001F469\u200D\U0001F467",
        combining="e\u0301", quotes="\"double\" and 'single' \\ backslash", controls="tab\there\nnewline\u0000nul\u2028ls",
        html="<b>&amp;</b>")
uni["\u30ad\u30fc"] = "\u5024"
write(d+"unicode_payload_python.json", py(tm(payload=uni)), "TaskMessage", True,
      "non-ASCII text as Python writes it (ensure_ascii: \\u escapes and surrogate pairs), control characters, quotes, HTML and a non-ASCII key",
      want=O(payload=uni))
write(d+"unicode_payload_utf8.json", json.dumps(tm(payload=uni), ensure_ascii=False, separators=(",", ":")).encode("utf-8"), "TaskMessage", True,
      "the same payload as raw UTF-8, compact", want=O(payload=uni))
um = tm()
um["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
um["future_field"] = O(nested=[1, 2.5, None], flag=True)
write(d+"unknown_fields.json", py(um), "TaskMessage", True,
      "unknown top-level fields (a trace context, a field from a newer sender) are accepted and written back unchanged",
      want=O(traceparent=um["traceparent"], future_field=um["future_field"]))
write(d+"time_with_offset.json", py(tm(created_at="2026-02-09T12:15:30.5+02:00")), "TaskMessage", True,
      "created_at with a +02:00 offset is read and written back in UTC", want=O(created_at="2026-02-09T10:15:30.500000Z"))
write(d+"time_naive.json", py(tm(created_at="2026-02-09T10:15:30.123456")), "TaskMessage", True,
      "created_at without offset (a naive Python datetime) is read as UTC", want=O(created_at=NOW))
write(d+"time_nanoseconds.json", py(tm(created_at="2026-02-09T10:15:30.123456789Z")), "TaskMessage", True,
      "created_at with nanoseconds is kept at the microsecond precision Python datetimes hold", want=O(created_at=NOW))
write(d+"time_whole_second.json", py(tm(created_at="2026-02-09T10:15:30+00:00")), "TaskMessage", True,
      "created_at with no fraction and an explicit +00:00", want=O(created_at="2026-02-09T10:15:30Z"))
nums = O(zero=0, neg=-17, frac=0.1, exp=6.02e23, small=1e-7, big=9007199254740993, neg_zero=-0.0, flags=[True, False, None],
         matrix=[[1, 2], [3, 4]], deep=O(a=O(b=O(c=O(d=["e"])))), empty_obj=O(), empty_arr=[])
write(d+"numbers_and_nesting.json", py(tm(payload=nums)), "TaskMessage", True,
      "payload numbers (integers, fractions, exponents, -0.0), booleans, nulls and deep nesting; payload numbers are float64, so an integer beyond 2^53 (9007199254740993) reads as its nearest float64",
      want=O(payload=O(nums, big=9007199254740992)))
no_id = tm(); del no_id["task_id"]; del no_id["created_at"]
write(d+"no_task_id.json", py(no_id), "TaskMessage", True,
      "task_id and created_at absent: a fresh UUID and the current time are assigned, as pydantic's default factories do")
write(d+"integral_float_counts.json", py(tm(max_retries=3.0, retry_count=1e0)), "TaskMessage", True,
      "counts written as 3.0 and 1.0 are the integers 3 and 1, as pydantic and JSON Schema read them", want=O(max_retries=3, retry_count=1))
write(d+"dotted_worker_type.json", py(tm(worker_type="docs.summarizer")), "TaskMessage", True,
      "a dotted worker_type is several subject tokens, which is still a valid subject", want=O(worker_type="docs.summarizer"))

# ---------------- TaskMessage, invalid ----------------
def bad(name, obj_or_bytes, fields, note):
    data = obj_or_bytes if isinstance(obj_or_bytes, (bytes, str)) else py(obj_or_bytes)
    write(d+"invalid/"+name+".json", data, "TaskMessage", False, note, fields=fields)
m = tm(); del m["worker_type"]
bad("missing_worker_type", m, ["worker_type"], "worker_type is required")
bad("empty_worker_type", tm(worker_type=""), ["worker_type"], "worker_type must not be empty")
bad("worker_type_number", tm(worker_type=7), ["worker_type"], "worker_type must be a string")
bad("worker_type_with_space", tm(worker_type="doc summarizer"), ["worker_type"], "worker_type is used in subjects: no whitespace")
bad("worker_type_wildcard", tm(worker_type="*"), ["worker_type"], "worker_type is used in subjects: no wildcard tokens")
bad("worker_type_empty_token", tm(worker_type="docs..summarizer"), ["worker_type"], "worker_type is used in subjects: no empty tokens")
bad("bad_tier", tm(model_tier="huge"), ["model_tier"], "model_tier must be local, standard or frontier")
bad("tier_wrong_case", tm(model_tier="Standard"), ["model_tier"], "enum values are lower case")
bad("tier_null", tm(model_tier=None), ["model_tier"], "model_tier may be absent but not null")
bad("bad_priority", tm(priority="urgent"), ["priority"], "priority must be low, normal, high or critical")
m = tm(); del m["payload"]
bad("missing_payload", m, ["payload"], "payload is required, as in the Python model")
bad("payload_null", tm(payload=None), ["payload"], "payload must be an object")
bad("payload_array", tm(payload=[1, 2]), ["payload"], "payload must be an object")
bad("payload_string", tm(payload="{}"), ["payload"], "payload must be an object, not JSON text in a string")
bad("max_retries_string", tm(max_retries="2"), ["max_retries"], "integers are not coerced from strings")
bad("max_retries_fraction", tm(max_retries=2.5), ["max_retries"], "max_retries must be an integer")
bad("retry_count_negative", tm(retry_count=-1), ["retry_count"], "retry_count must not be negative")
bad("parent_task_id_number", tm(parent_task_id=42), ["parent_task_id"], "parent_task_id must be a string or null")
bad("parent_task_id_wildcard", tm(parent_task_id="goal.>"), ["parent_task_id"], "parent_task_id is used in the result subject: no wildcards")
bad("task_id_null", tm(task_id=None), ["task_id"], "task_id may be absent but not null")
bad("created_at_garbage", tm(created_at="yesterday"), ["created_at"], "created_at must be an RFC 3339 timestamp")
bad("created_at_number", tm(created_at=1770632130), ["created_at"], "created_at must be a string")
bad("created_at_impossible_date", tm(created_at="2026-02-30T10:00:00Z"), ["created_at"], "February has no 30th")
bad("metadata_null", tm(metadata=None), ["metadata"], "metadata must be an object")
bad("metadata_array", tm(metadata=["a"]), ["metadata"], "metadata must be an object")
bad("request_id_object", tm(request_id=O(id=1)), ["request_id"], "request_id must be a string or null")
m = tm(model_tier="huge", payload=[]); del m["worker_type"]
bad("several_problems", m, ["worker_type", "payload", "model_tier"], "every problem is reported, in wire field order")
bad("not_an_object", '["worker_type", "echo"]', [""], "a JSON array is not a message")
bad("json_null", 'null', [""], "JSON null is not a message")
bad("truncated", '{"worker_type": "echo", "payload": {', [""], "malformed JSON")
bad("empty", b'', [""], "an empty message")

# ---------------- TaskResult ----------------
d = "task_result/"
def tr(**kw):
    r = O(task_id=T2, parent_task_id=G1, worker_type="doc_extractor", status="completed",
          output=O(text_preview="Quarterly report\u2026", page_count=12, sections=["intro", "numbers"]),
          error=None, model_used="claude-sonnet-4-20250514", token_usage=O(prompt_tokens=1532, completion_tokens=211),
          processing_time_ms=2345, completed_at="2026-02-09T10:15:32.654321Z")
    r.update(kw)
    return r
write(d+"python_completed.json", py(tr()), "TaskResult", True,
      "a completed result as the Python worker publishes it", want=O(status="completed", error=None, token_usage=O(prompt_tokens=1532, completion_tokens=211)))
write(d+"python_failed.json", py(tr(status="failed", output=None, error="contract violation: /file_ref: required", model_used=None, token_usage=O(), processing_time_ms=3)), "TaskResult", True,
      "a failed result: null output, an error text, null model_used", want=O(status="failed", output=None, model_used=None, error="contract violation: /file_ref: required"))
for st in ["pending", "processing", "retry"]:
    write(d+"status_"+st+".json", py(tr(status=st, output=None)), "TaskResult", True, "status "+st, want=O(status=st))
write(d+"minimal.json", '{"task_id":"t-1","worker_type":"echo","status":"completed"}', "TaskResult", True,
      "only the required fields: output and error null, no token usage, parent null",
      want=O(parent_task_id=None, output=None, error=None, model_used=None, token_usage=O(), processing_time_ms=0))
write(d+"standalone_no_parent.json", py(tr(parent_task_id=None)), "TaskResult", True,
      "a result with no parent, published on heddle.results.default", want=O(parent_task_id=None))
timeout = tr(task_id=G1, parent_task_id=G1, worker_type="orchestrator", status="completed",
             output=O(summary="2 of 3 subtasks finished", results=[O(task_id=T2, status="completed")],
                      metadata=O(timeout=O(pending_task_ids=["c0ffee00-0000-4000-8000-000000000003"], expected_count=3, collected_count=2, timeout_seconds=300))),
             model_used=None, token_usage=O())
write(d+"goal_timeout.json", py(timeout), "TaskResult", True,
      "an orchestrator's final goal result after a collection timeout (output.metadata.timeout)", want=O(output=timeout["output"]))
write(d+"unicode_output.json", py(tr(output=O(summary="\u00c9t\u00e9 \u2603 \U0001F680", keys={"\u00fc": 1}))), "TaskResult", True,
      "non-ASCII output", want=O(output=O(summary="\u00c9t\u00e9 \u2603 \U0001F680", keys={"\u00fc": 1})))
ur = tr(); ur["worker_version"] = "1.4.2"; ur["trace"] = O(span="00f067aa0ba902b7")
write(d+"unknown_fields.json", py(ur), "TaskResult", True, "unknown top-level fields are kept", want=O(worker_version="1.4.2", trace=ur["trace"]))
def badr(name, obj_or_bytes, fields, note):
    data = obj_or_bytes if isinstance(obj_or_bytes, (bytes, str)) else py(obj_or_bytes)
    write(d+"invalid/"+name+".json", data, "TaskResult", False, note, fields=fields)
r = tr(); del r["task_id"]; badr("missing_task_id", r, ["task_id"], "task_id is required on a result")
r = tr(); del r["worker_type"]; badr("missing_worker_type", r, ["worker_type"], "worker_type is required on a result")
r = tr(); del r["status"]; badr("missing_status", r, ["status"], "status is required")
badr("bad_status", tr(status="done"), ["status"], "status must be one of the five statuses")
badr("status_upper_case", tr(status="COMPLETED"), ["status"], "enum values are lower case")
badr("output_array", tr(output=[1]), ["output"], "output must be an object or null")
badr("output_string", tr(output="done"), ["output"], "output must be an object or null")
badr("error_object", tr(status="failed", error=O(message="boom")), ["error"], "error must be a string or null")
badr("token_usage_fraction", tr(token_usage=O(prompt_tokens=1.5)), ["token_usage"], "token counts are integers")
badr("token_usage_null_count", tr(token_usage=O(prompt_tokens=None)), ["token_usage"], "token counts are integers, not null")
badr("token_usage_string", tr(token_usage=O(prompt_tokens="10")), ["token_usage"], "token counts are integers")
badr("token_usage_array", tr(token_usage=[10, 20]), ["token_usage"], "token_usage is an object")
badr("processing_time_string", tr(processing_time_ms="12"), ["processing_time_ms"], "processing_time_ms is an integer")
badr("processing_time_negative", tr(processing_time_ms=-5), ["processing_time_ms"], "processing_time_ms must not be negative")
badr("completed_at_garbage", tr(completed_at="soon"), ["completed_at"], "completed_at must be an RFC 3339 timestamp")
badr("parent_task_id_with_space", tr(parent_task_id="goal 1"), ["parent_task_id"], "parent_task_id is used in the result subject")

# ---------------- OrchestratorGoal ----------------
d = "orchestrator_goal/"
def og(**kw):
    g = O(goal_id=G1, instruction="Summarise the quarterly report and extract its figures.",
          context=O(file_ref="s3://bucket/report.pdf", categories=["finance", "summary"]),
          request_id=None, priority="normal", created_at="2026-02-09T10:15:00.000001Z")
    g.update(kw)
    return g
write(d+"python_default.json", py(og()), "OrchestratorGoal", True, "a goal as the Python CLI submits it", want=O(request_id=None, priority="normal"))
write(d+"critical_with_request_id.json", py(og(priority="critical", request_id="req-7", context=O(nested=O(deep=[1, O(x="\u00e5")])))), "OrchestratorGoal", True,
      "priority critical, a request_id and nested non-ASCII context", want=O(priority="critical", request_id="req-7"))
write(d+"minimal.json", '{"instruction":"Say hello."}', "OrchestratorGoal", True,
      "only the instruction: a fresh goal_id and created_at, empty context, priority normal", want=O(context=O(), priority="normal", request_id=None))
ug = og(); ug["submitted_by"] = "cli"
write(d+"unknown_fields.json", py(ug), "OrchestratorGoal", True, "unknown top-level fields are kept", want=O(submitted_by="cli"))
write(d+"empty_instruction.json", py(og(instruction="")), "OrchestratorGoal", True,
      "an empty instruction: schema v1 and the Python Heddle accept it", want=O(instruction=""))
def badg(name, obj, fields, note):
    write(d+"invalid/"+name+".json", py(obj), "OrchestratorGoal", False, note, fields=fields)
g = og(); del g["instruction"]; badg("missing_instruction", g, ["instruction"], "instruction is required")
badg("bad_priority", og(priority="asap"), ["priority"], "priority must be low, normal, high or critical")
badg("context_array", og(context=["a"]), ["context"], "context must be an object")
badg("goal_id_number", og(goal_id=12), ["goal_id"], "goal_id must be a string")

# ---------------- DeadLetter ----------------
d = "dead_letter/"
orig_invalid = O(payload=O(), model_tier="standard")
write(d+"python_invalid_message.json", py(O(reason="invalid_task_message: 1 validation error for TaskMessage\nworker_type\n  Field required [type=missing, input_value={'payload': {}, 'model_tier': 'standard'}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.9/v/missing",
      original_task=orig_invalid, task_id=None, worker_type=None)), "DeadLetter", True,
      "the Python router's envelope for a message that failed validation: task_id and worker_type null",
      want=O(task_id=None, worker_type=None, original_task=orig_invalid), want_original=json.dumps(orig_invalid).encode())
orig_rl = tm(model_tier="frontier")
write(d+"python_rate_limited.json", py(O(reason="rate_limited: tier 'frontier' has no available capacity", original_task=orig_rl, task_id=T1, worker_type="summarizer")), "DeadLetter", True,
      "the Python router's envelope for a rate-limited task", want=O(task_id=T1, worker_type="summarizer"), want_original=json.dumps(orig_rl).encode())
orig_ut = tm(model_tier="standard")
write(d+"python_unknown_tier.json", py(O(reason="unknown_tier: 'gpu' is not a valid ModelTier", original_task=orig_ut, task_id=T1, worker_type="summarizer")), "DeadLetter", True,
      "the Python router's envelope after a tier override named an unknown tier", want=O(reason="unknown_tier: 'gpu' is not a valid ModelTier"))
orig_num = O(task_id=42, worker_type=["x"], payload=O())
write(d+"python_task_id_number.json", py(O(reason="invalid_task_message: task_id: Input should be a valid string", original_task=orig_num, task_id=42, worker_type=["x"])), "DeadLetter", True,
      "Python copies task_id and worker_type from the original whatever their type; other types read as unknown",
      want=O(task_id=None, worker_type=None), want_original=json.dumps(orig_num).encode())
raw = b"not json at all \xff\xfe"
write(d+"go_not_json.json", json.dumps(O(reason="invalid_task_message: malformed JSON: invalid character 'o' in literal null (expecting 'u')", original_task=None,
      original_raw=base64.b64encode(raw).decode(), task_id=None, worker_type=None, received_at="2026-02-09T10:15:30.5Z"), separators=(",", ":")).encode(), "DeadLetter", True,
      "the Go router's envelope for bytes that are not JSON: original_raw holds them exactly (base64); re-encoded, original_task holds them as text for readers of original_task alone", want=O(original_task=O(_unparsed="not json at all \ufffd\ufffd")), want_original=raw)
padded = b'  {"worker_type": "echo"}\n'
write(d+"go_padded_json.json", json.dumps(O(reason="invalid_task_message: payload: required", original_task=O(worker_type="echo"),
      original_raw=base64.b64encode(padded).decode(), task_id=None, worker_type="echo", received_at="2026-02-09T10:15:30Z"), separators=(",", ":")).encode(), "DeadLetter", True,
      "JSON with whitespace around it: original_task holds the value, original_raw the exact bytes", want=O(worker_type="echo"), want_original=padded)
pretty_orig = b'{\n  "worker_type": "echo",\n  "model_tier": "huge",\n  "payload": {"text": "<&>"}\n}'
write(d+"go_pretty_original.json", b'{"reason":"invalid_task_message: model_tier: \\"huge\\" is not one of local, standard, frontier","original_task":' + pretty_orig +
      b',"task_id":null,"worker_type":"echo","received_at":"2026-02-09T10:15:30.000001Z"}', "DeadLetter", True,
      "a pretty-printed original embedded verbatim: replay gets the very same bytes", want_original=pretty_orig)
def badd(name, obj, fields, note):
    write(d+"invalid/"+name+".json", py(obj), "DeadLetter", False, note, fields=fields)
badd("missing_reason", O(original_task=O(worker_type="echo"), task_id=None, worker_type="echo"), ["reason"], "reason is required")
badd("missing_original", O(reason="rate_limited: tier 'local' has no available capacity", task_id=T1, worker_type="echo"), ["original_task"], "the original is required")
badd("original_raw_not_base64", O(reason="invalid_task_message: x", original_task=None, original_raw="%%%not base64"), ["original_raw"], "original_raw must be base64")
badd("received_at_garbage", O(reason="r", original_task=O(), received_at="later"), ["received_at"], "received_at must be an RFC 3339 timestamp")

with open("manifest.json", "w") as f:
    json.dump(O(description="Golden wire fixtures: JSON documents as the Python Heddle mesh (and the Go SDK) write them, and invalid ones. "
                "Each entry names its file, message type and validity; an invalid entry lists the fields its error must name "
                "(\"\" for a problem with the whole document); a valid entry may list fields its re-encoded form must hold (want) "
                "and, for a DeadLetter, the exact original bytes (want_original_base64).",
                fixtures=manifest), f, indent=1, ensure_ascii=False)
    f.write("\n")
print(len(manifest), "fixtures")
