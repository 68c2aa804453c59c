// npu-sim stand-in for XRT's version.h: the simulator implements the 2.17
// API subset the xrt backend uses.
#ifndef NPUSIM_VERSION_H_
#define NPUSIM_VERSION_H_

#define XRT_VERSION(major, minor) (((major) << 16) + (minor))
#define XRT_VERSION_CODE XRT_VERSION(2, 17)
#define XRT_MAJOR(code) ((code) >> 16)
#define XRT_MINOR(code) ((code) - (((code) >> 16) << 16))
#define XRT_PATCH 0
#define XRT_HEAD_COMMITS 0
#define XRT_BRANCH_COMMITS 0
// Lets code tell the simulator from a real XRT when it must (tests only).
#define NPUSIM_XRT 1

#endif  // NPUSIM_VERSION_H_
