// GenerationRequest <-> JSON: the job's parameters as they are written into the MP4 metadata, the
// JSON sidecar and the job folder, and read back by "load parameters" and resume.
#pragma once
#include <string>

#include "framesmith/pipeline.h"

namespace framesmith {

// Every parameter except the image pixels (the cropped input is saved beside the video).
std::string request_to_json(const GenerationRequest& r);
// Fills the fields present in `json` (a sidecar or a "framesmith_params" metadata value); throws
// Error for malformed JSON or out-of-range values, naming the field.
void request_from_json(const std::string& json, GenerationRequest& r);
// Range checks shared by the CLI, the GUI and the engine; throws Error naming the value.
void validate_request(const GenerationRequest& r);

}  // namespace framesmith
