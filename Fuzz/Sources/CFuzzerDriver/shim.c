// The declaration in include/CFuzzerDriver.h is all this module is; SwiftPM wants one source file.
#include "CFuzzerDriver.h"
