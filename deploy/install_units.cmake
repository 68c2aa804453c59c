# Run by `cmake --install` (install(CODE) in deploy/CMakeLists.txt), so the
# paths follow the prefix given at install time (--prefix, or
# CMAKE_INSTALL_PREFIX at configure time) and DESTDIR is honoured.
# Writes npukd.service from the template with the installed daemon's path,
# and installs the example config where that unit's --config points.
# Inputs: NPUK_DEPLOY_SRC, NPUK_UNIT_TMP (scratch directory in the build
# tree), NPUK_BINDIR_REL, NPUK_DOCDIR_REL, NPUK_UNITDIR_REL (relative to the
# prefix, or absolute).
set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")

function(_npuk_full out rel)
  if(IS_ABSOLUTE "${rel}")
    set(${out} "${rel}" PARENT_SCOPE)
  else()
    set(${out} "${_prefix}/${rel}" PARENT_SCOPE)
  endif()
endfunction()

_npuk_full(NPUK_BINDIR "${NPUK_BINDIR_REL}")
_npuk_full(NPUK_DOCDIR "${NPUK_DOCDIR_REL}")
_npuk_full(_unitdir "${NPUK_UNITDIR_REL}")
# GNU conventions (as GNUInstallDirs): configuration of a /usr (or /)
# install lives in /etc, otherwise under the prefix.
if(_prefix STREQUAL "/usr" OR _prefix STREQUAL "")
  set(NPUK_CONFDIR "/etc/npukd")
else()
  set(NPUK_CONFDIR "${_prefix}/etc/npukd")
endif()

configure_file("${NPUK_DEPLOY_SRC}/systemd/npukd.service.in"
  "${NPUK_UNIT_TMP}/npukd.service" @ONLY)
file(INSTALL DESTINATION "${_unitdir}" TYPE FILE FILES
  "${NPUK_UNIT_TMP}/npukd.service" "${NPUK_DEPLOY_SRC}/systemd/npukd.socket")
file(INSTALL DESTINATION "${NPUK_CONFDIR}" TYPE FILE FILES
  "${NPUK_DEPLOY_SRC}/npukd.conf")
