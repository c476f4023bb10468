# StockadeAgent.cmake -- how an agent module is built, shared by the stockade tree
# (cmake/StockadeHelpers.cmake) and by out-of-tree agents (installed by stockade-dev with
# stockadeConfig.cmake).  Set before including: STOCKADE_AGENT_INCLUDE_DIR (where
# stockade/agent.h is) and STOCKADE_AGENT_VERSION_SCRIPT (agent.map).

# stockade_agent_module(TARGET NAME SOURCES a.c ... [LIBS lib ...] [INCLUDES dir ...])
# NAME.so exporting only stockade_agent_entry, never linking libstockade, no undefined symbols.
function(stockade_agent_module target name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  if(NOT name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "stockade agent '${name}': agent names are lower-case letters, digits and '_' only")
  endif()
  add_library(${target} MODULE ${A_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${name}
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(${target} PRIVATE ${STOCKADE_AGENT_INCLUDE_DIR} ${A_INCLUDES})
  target_link_libraries(${target} PRIVATE ${A_LIBS})
  target_link_options(${target} PRIVATE
    -Wl,--version-script=${STOCKADE_AGENT_VERSION_SCRIPT} -Wl,--no-undefined)
endfunction()
