#include "CTEDLinux.h"
