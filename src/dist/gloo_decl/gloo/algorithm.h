#pragma once
// See gloo/decl.h.
#include "gloo/decl.h"
