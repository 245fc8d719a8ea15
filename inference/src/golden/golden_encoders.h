// Reference parity for the conditioning encoders and the start-image preparation (case sets
// text-tiny-a and image-a; format in shared/golden/README.md). Everything is read from the set:
// model folders, configs, case tensors and metadata.
#pragma once
#include <vector>

#include "golden/golden.h"

namespace framesmith::golden {

// Tolerance of uint8 crops: Pillow's fixed-point Lanczos, matched within one level per channel.
constexpr double kTolUint8 = 1.0;

// clip_text_forward: `<set>/text_encoder_2` on in.input_ids (and in.attention_mask if present)
// -> last_hidden_state, pooler_output (rel-L2 <= kTolForward).
std::vector<CaseResult> run_clip_text_forward(const Case& c);
// llama_forward: `<set>/text_encoder` on in.input_ids (and in.attention_mask if present) -> every
// out.hidden_states.<i> (rel-L2 <= kTolForward).
std::vector<CaseResult> run_llama_forward(const Case& c);
// image_prep: for each in.image.<i>: out.bucket.<i> (exact; resolution from the metadata,
// default 640) and out.cropped.<i> (passes when max_abs <= kTolUint8; rel_l2 reported too).
std::vector<CaseResult> run_image_prep(const Case& c);
// siglip_forward: `<set>/feature_extractor` preprocessing of in.image -> out.pixel_values, the
// same steps at the size of any out.pixel_values_<N>, and `<set>/image_encoder` on our
// pixel_values -> out.last_hidden_state (rel-L2 <= kTolForward).
std::vector<CaseResult> run_siglip_forward(const Case& c);

}  // namespace framesmith::golden
