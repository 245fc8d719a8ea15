// The transformer_forward case's inputs as the model takes them (shared by the golden runner and
// `bench transformer --inputs`).
#pragma once
#include "golden/golden.h"
#include "models/transformer_packed.h"

namespace framesmith::golden {

// TransformerInputs from the case's in.* tensors (FramePack's names for the 2x/4x indices).
TransformerInputs transformer_case_inputs(const Case& c);

}  // namespace framesmith::golden
