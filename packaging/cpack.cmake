# The .deb package (CPack). Included from the top-level CMakeLists.txt; build it with
#   cmake --build build --target pms-agent && (cd build && cpack -G DEB)
# Contents: /usr/bin/pms-agent and its man page, the systemd units (the agent; the upgrade
# helper and its path trigger, with /usr/lib/pms-agent/upgrade-helper), /etc/pms-agent/agent.json (a conffile), an
# example config per adapter type and the docs under /usr/share/doc/pms-agent. The maintainer
# scripts (packaging/deb/) create the pms-agent system user, fix ownership, generate the data
# key as that user and enable the unit; removal keeps the queue, only purge deletes it.

set(PSA_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})

install(FILES ${PROJECT_SOURCE_DIR}/systemd/pms-agent.service
              ${PROJECT_SOURCE_DIR}/systemd/pms-agent-upgrade.service
              ${PROJECT_SOURCE_DIR}/systemd/pms-agent-upgrade.path
        DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# The upgrade helper's entry point (README "Self-upgrade").
install(PROGRAMS ${PSA_PKG_DIR}/upgrade/upgrade-helper DESTINATION lib/pms-agent)
# Shipped 0644 (Debian's norm for conffiles); postinst makes it 0640 root:pms-agent.
install(FILES ${PSA_PKG_DIR}/agent.json DESTINATION /etc/pms-agent
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(DIRECTORY ${PSA_PKG_DIR}/examples/ DESTINATION share/doc/pms-agent/examples
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${PSA_PKG_DIR}/copyright ${PSA_PKG_DIR}/TROUBLESHOOTING.md ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION share/doc/pms-agent
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# A native package's changelog, compressed the way Debian wants it (gzip -9n: no name, no time).
set(PSA_CHANGELOG_GZ ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/packaging)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PSA_PKG_DIR}/changelog)
execute_process(COMMAND gzip -9n -c ${PSA_PKG_DIR}/changelog
                OUTPUT_FILE ${PSA_CHANGELOG_GZ} RESULT_VARIABLE psa_gzip_rc)
set(PSA_MANPAGE_GZ ${CMAKE_BINARY_DIR}/packaging/pms-agent.1.gz)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PSA_PKG_DIR}/pms-agent.1)
execute_process(COMMAND gzip -9n -c ${PSA_PKG_DIR}/pms-agent.1
                OUTPUT_FILE ${PSA_MANPAGE_GZ} RESULT_VARIABLE psa_gzip_man_rc)
if(psa_gzip_rc EQUAL 0 AND psa_gzip_man_rc EQUAL 0)
  install(FILES ${PSA_CHANGELOG_GZ} DESTINATION share/doc/pms-agent
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  install(FILES ${PSA_MANPAGE_GZ} DESTINATION share/man/man1
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()

# Maintainer scripts are copied into the build tree so CPack packs them with mode 0755.
foreach(script postinst prerm postrm conffiles)
  configure_file(${PSA_PKG_DIR}/deb/${script} ${CMAKE_BINARY_DIR}/packaging/deb/${script} COPYONLY)
  list(APPEND PSA_DEB_CONTROL ${CMAKE_BINARY_DIR}/packaging/deb/${script})
endforeach()

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "pms-agent")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Practice Studio")
set(CPACK_PACKAGE_CONTACT "Practice Studio <support@practicestudio.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://practicestudio.example/edge-agent")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-repack: the upgrade helper keeps a package of the version installed by hand, so the
# first self-upgrade can roll back.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, dpkg-repack")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Practice Studio Edge Agent: relays PMS/EHR data to the cloud")
# The extended description (CPack puts the summary above it as the synopsis).
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
       "The agent runs beside a medical practice's practice management or EHR\n"
       "server. It receives HL7 v2 over MLLP, picks up exported files and polls\n"
       "REST/FHIR APIs, keeps every record in an encrypted durable queue, and\n"
       "relays it to the Practice Studio cloud over MQTT 5 with mutual TLS. The\n"
       "pms-agent command line lets a technician check and repair it on site\n"
       "without seeing patient data.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PSA_DEB_CONTROL})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
