// The API shapes the page reads, as JSDoc types: the one place the client says what it
// expects from the service. tests/web/test_api_types.py checks every typedef against the
// app's /openapi.json (and the stream frames against a live stream), so a field the API
// does not have fails the build instead of silently reading `undefined`.
//
// Tags: `@schema Name` mirrors the OpenAPI component Name field for field;
// `@schemaPart Name` holds some of Name's fields (an SSE event that carries part of a
// response); `@stream name` is a stream frame with no OpenAPI schema, checked against
// frames a live service sends; `@event name` is the SSE event name that carries it.

// ------------------------------------------------------------------ identity --

/**
 * @typedef {Object} Me
 * @schema MeResponse
 * @property {string} id
 * @property {string} name
 * @property {string} [kind]
 * @property {string[]} scopes
 * @property {string[]} collections
 * @property {boolean} reasoning
 * @property {boolean} ingest
 * @property {string} default_collection
 * @property {MeLimits} limits
 * @property {?string[]} [writable]
 * @property {?string} [email]
 * @property {?string[]} [groups]
 * @property {?string} [csrf_token]
 */

/**
 * @typedef {Object} MeLimits
 * @schema MeLimits
 * @property {number} question_chars
 * @property {number} upload_mb
 */

/**
 * @typedef {Object} Providers
 * @schema ProvidersResponse
 * @property {boolean} keys
 * @property {Provider[]} providers
 */

/**
 * @typedef {Object} Provider
 * @schema ProviderModel
 * @property {string} name
 * @property {string} label
 * @property {string} login_url
 */

/**
 * @typedef {Object} Logout
 * @schema LogoutResponse
 * @property {boolean} signed_out
 * @property {?string} [redirect]
 */

// -------------------------------------------------------------------- errors --

/**
 * @typedef {Object} ErrorBody
 * @schema ErrorResponse
 * @property {ErrorDetail} error
 */

/**
 * Also the data of the `error` SSE event of /v1/query.
 * @typedef {Object} ErrorDetail
 * @schema ErrorDetail
 * @event error
 * @property {string} code
 * @property {string} message
 * @property {?Object<string, *>} [detail]
 */

// --------------------------------------------------------------- collections --

/**
 * @typedef {Object} Collections
 * @schema CollectionsResponse
 * @property {Collection[]} collections
 */

/**
 * @typedef {Object} Collection
 * @schema CollectionModel
 * @property {string} name
 * @property {number} documents
 * @property {number} chunks
 * @property {number} failed
 * @property {number} pending
 * @property {?string} embedder
 * @property {?string} last_indexed_at
 */

// -------------------------------------------------------------------- answers --

/**
 * @typedef {Object} Citation
 * @schema CitationModel
 * @property {number} n
 * @property {string} document_id
 * @property {string} source
 * @property {string} title
 * @property {?number} page
 * @property {?number} page_end
 * @property {string} snippet
 * @property {number} score
 * @property {string} collection
 * @property {string} chunk_id
 */

/**
 * @typedef {Object} Notice
 * @schema Notice
 * @property {string} code
 * @property {string} message
 */

/**
 * @typedef {Object} Usage
 * @schema Usage
 * @property {number} prompt_tokens
 * @property {number} completion_tokens
 * @property {number} total_tokens
 * @property {number} [reasoning_chars]
 */

/**
 * @typedef {Object} Grounding
 * @schema GroundingModel
 * @property {number} checked
 * @property {UnsupportedSpan[]} unsupported
 * @property {number[]} invalid_citations
 * @property {AttributedMark[]} attributed
 */

/**
 * A citation mark the service inserted (the model cited nothing in that sentence).
 * @typedef {Object} AttributedMark
 * @schema AttributedMark
 * @property {number} n
 * @property {number[]} span
 * @property {number[]} sentence
 * @property {number} score
 */

/**
 * @typedef {Object} UnsupportedSpan
 * @schema UnsupportedSpan
 * @property {string} text
 * @property {number[]} span
 * @property {"figure"|"quote"} kind
 */

/**
 * The `sources` SSE event of /v1/query: right after retrieval.
 * @typedef {Object} SourcesEvent
 * @schemaPart QueryResponse
 * @event sources
 * @property {string} request_id
 * @property {Citation[]} citations
 */

/**
 * The `token` (answer) and `reasoning` SSE events of /v1/query: one text delta each.
 * @typedef {Object} TextEvent
 * @stream query
 * @event token
 * @event reasoning
 * @property {string} text
 */

/**
 * The `done` SSE event of /v1/query: the final answer and what it was made of.
 * @typedef {Object} DoneEvent
 * @schemaPart QueryResponse
 * @event done
 * @property {string} request_id
 * @property {string} answer
 * @property {number[]} cited
 * @property {string} model
 * @property {Usage} usage
 * @property {Object<string, number>} timings
 * @property {?Notice} [notice]
 * @property {"model"|"extract"|"sources"} mode
 * @property {?Grounding} [grounding]
 */

/**
 * @typedef {Object} ReasoningRecord
 * @schema ReasoningRecordResponse
 * @property {string} request_id
 * @property {string} time
 * @property {string} caller_id
 * @property {string} [caller_name]
 * @property {string[]} collections
 * @property {string} question
 * @property {string} model
 * @property {string} reasoning
 * @property {string} status
 * @property {Object<string, number>} usage
 * @property {Object<string, number>} durations_ms
 */

// ------------------------------------------- follow-ups: /v1/chat/completions --

/**
 * One `chat.completion.chunk` of a streamed follow-up (then `data: [DONE]`).
 * @typedef {Object} ChatChunk
 * @stream chat
 * @property {string} id
 * @property {string} model
 * @property {ChatChunkChoice[]} choices
 * @property {string} [inhouse_request_id]
 * @property {Citation[]} [inhouse_sources]
 * @property {"model"|"extract"|"sources"} [inhouse_mode]
 * @property {Notice} [inhouse_notice]
 * @property {Grounding} [inhouse_grounding]
 * @property {string} [inhouse_answer]
 */

/**
 * @typedef {Object} ChatChunkChoice
 * @stream chat
 * @property {number} index
 * @property {ChatChunkDelta} delta
 * @property {?string} finish_reason
 */

/**
 * @typedef {Object} ChatChunkDelta
 * @stream chat
 * @property {string} [role]
 * @property {string} [content]
 */

/**
 * The frame that ends a follow-up stream that failed.
 * @typedef {Object} ChatStreamError
 * @stream chat
 * @property {ErrorDetail} error
 */

// ------------------------------------------------------------------- uploads --

/**
 * @typedef {Object} UploadResult
 * @schema UploadResponse
 * @property {string} collection
 * @property {UploadedFile[]} files
 */

/**
 * @typedef {Object} UploadedFile
 * @schema UploadedFile
 * @property {string} filename
 * @property {string} status
 * @property {?string} [document_id]
 * @property {?string} [code]
 * @property {?string} [message]
 * @property {number} [chunks]
 * @property {?number} [pages]
 * @property {number} [bytes]
 */

// --------------------------------------------------------------------- admin --

/**
 * @typedef {Object} Failures
 * @schema FailuresResponse
 * @property {FailureGroup[]} reasons
 */

/**
 * @typedef {Object} FailureGroup
 * @schema FailureGroup
 * @property {string} code
 * @property {number} count
 * @property {FailedFile[]} files
 */

/**
 * @typedef {Object} FailedFile
 * @schema FailedFile
 * @property {string} collection
 * @property {string} path
 * @property {string} message
 * @property {string} updated_at
 */

/**
 * @typedef {Object} Sources
 * @schemaPart SourcesResponse
 * @property {Source[]} sources
 */

/**
 * @typedef {Object} Source
 * @schemaPart SourceModel
 * @property {string} name
 * @property {string} collection
 * @property {string} schedule
 * @property {boolean} enabled
 * @property {?string} next_run_at
 * @property {?Run} running
 * @property {Run[]} last_runs
 */

/**
 * @typedef {Object} Run
 * @schemaPart RunModel
 * @property {string} outcome
 * @property {string} started_at
 * @property {?string} finished_at
 * @property {Progress} progress
 */

/**
 * @typedef {Object} Progress
 * @schema ProgressModel
 * @property {number} files_done
 * @property {?number} files_total
 * @property {?number} eta_s
 * @property {?number} [workers]
 */

/**
 * @typedef {Object} Keys
 * @schema KeysResponse
 * @property {Key[]} keys
 */

/**
 * @typedef {Object} Key
 * @schema KeyModel
 * @property {string} key_id
 * @property {string} name
 * @property {string[]} scopes
 * @property {string[]} collections
 * @property {string} created_at
 * @property {?string} revoked_at
 * @property {boolean} active
 */

/**
 * @typedef {Object} KeyCreated
 * @schema KeyCreateResponse
 * @property {string} key
 * @property {Key} record
 */

/**
 * @typedef {Object} Sessions
 * @schema SessionsResponse
 * @property {Session[]} sessions
 */

/**
 * @typedef {Object} Session
 * @schema SessionModel
 * @property {string} ref
 * @property {string} provider
 * @property {string} subject
 * @property {string} name
 * @property {?string} email
 * @property {string[]} groups
 * @property {string} created_at
 * @property {string} last_seen
 * @property {boolean} current
 */

export {};
