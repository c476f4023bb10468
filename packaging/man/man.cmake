# Manual pages, generated at build time and installed gzip -9n (Debian policy):
#   fence_stockade(8), fence_stockade_<agent>(8)  from each agent's own parameter table (mangen.cpp)
#   stockade(8), stockade.json(5), stockade-meatclient(8), stockade-fence-node(8)  from the templates here
set(_man_dir ${CMAKE_CURRENT_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${_man_dir})
set(_man_pages "")

foreach(_page stockade.8 stockade.json.5 stockade-meatclient.8 stockade-fence-node.8)
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/man/${_page}.in ${_man_dir}/${_page} @ONLY)
  list(APPEND _man_pages ${_man_dir}/${_page})
endforeach()

if(TARGET stockade_frontend)
  add_executable(stockade-mangen ${CMAKE_CURRENT_SOURCE_DIR}/man/mangen.cpp)
  target_link_libraries(stockade-mangen PRIVATE stockade::frontend)
  set_target_properties(stockade-mangen PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  stockade_set_warnings(stockade-mangen)
  get_property(_man_agents GLOBAL PROPERTY STOCKADE_INSTALLED_AGENTS)
  set(_gen_pages ${_man_dir}/fence_stockade.8)
  set(_agent_targets "")
  foreach(_agent IN LISTS _man_agents)
    list(APPEND _gen_pages ${_man_dir}/fence_stockade_${_agent}.8)
    list(APPEND _agent_targets stockade_agent_${_agent})
  endforeach()
  add_custom_command(OUTPUT ${_gen_pages}
    COMMAND ${CMAKE_COMMAND} -E env STOCKADE_AGENT_PATH=${CMAKE_BINARY_DIR}/${STOCKADE_AGENT_DIR}
            $<TARGET_FILE:stockade-mangen> ${_man_dir} ${PROJECT_VERSION} ${_man_agents}
    DEPENDS stockade-mangen ${_agent_targets}
    COMMENT "Generating fence_stockade_<agent>(8) from each agent's parameter table" VERBATIM)
  list(APPEND _man_pages ${_gen_pages})
endif()

set(_man_gz "")
foreach(_page IN LISTS _man_pages)
  get_filename_component(_name ${_page} NAME)
  add_custom_command(OUTPUT ${_page}.gz
    COMMAND gzip -9nkf ${_page}
    DEPENDS ${_page} VERBATIM)
  list(APPEND _man_gz ${_page}.gz)
  string(REGEX MATCH "[0-9]$" _section ${_name})
  install(FILES ${_page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section} COMPONENT runtime)
endforeach()
add_custom_target(man ALL DEPENDS ${_man_gz})
# fence_node is a link to stockade-fence-node: so is its page.
install(CODE "file(CREATE_LINK stockade-fence-node.8.gz
  \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_MANDIR}/man8/fence_node.8.gz\" SYMBOLIC)" COMPONENT runtime)
