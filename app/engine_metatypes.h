// The engine's plain structs as Qt meta-types, so they travel through queued signals. Every
// header whose signals or slots carry them includes this one (declaring them twice, or after a
// first use, does not compile).
#pragma once
#include <QMetaType>

#include "framesmith/events.h"
#include "framesmith/pipeline.h"

Q_DECLARE_METATYPE(framesmith::Event)
Q_DECLARE_METATYPE(framesmith::Progress)
Q_DECLARE_METATYPE(framesmith::GenerationRequest)
