// Sharded checkpoints: a `*.safetensors.index.json` whose "weight_map" names, for every tensor, the
// shard file in the same folder that holds it (the hub's layout for models over 5-10 GB). The
// index is untrusted input like the shards: index and shards must agree exactly.
#pragma once
#include <string>

#include "io/safetensors.h"

namespace framesmith::io {

// Opens every shard the index names (each once) and checks, each failure an Error naming the
// index, shard and tensor: the index is a JSON object with a non-empty "weight_map" object that
// names no tensor twice; shard names are plain "*.safetensors" file names in the index's folder
// that exist; each tensor is in the shard the index names; no shard holds a tensor the index does
// not list or lists under another shard; "metadata.total_size", when given, is a byte count.
TensorStore open_sharded_index(const std::string& index_path);

}  // namespace framesmith::io
