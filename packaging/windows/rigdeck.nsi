; Rigdeck's Windows installer (NSIS 3): installs the PyInstaller bundle for the current user,
; without administrator rights, with a Start-menu shortcut, an optional desktop shortcut
; and an uninstaller (Settings > Apps lists it).
;
;   makensis -DVERSION=0.1.0 -DBUNDLE=<dist\rigdeck> -DOUTFILE=<setup.exe> -DICON=<rigdeck.ico> rigdeck.nsi
;
; packaging/build_packages.py windows-installer passes these. Uninstalling removes the
; program, its shortcuts and its login item, never the user's settings, conversations and
; logs (in %LOCALAPPDATA%\rigdeck).

Unicode true

!ifndef VERSION
  !error "pass -DVERSION=<Rigdeck's version>"
!endif
!ifndef BUNDLE
  !error "pass -DBUNDLE=<the PyInstaller one-folder bundle>"
!endif
!ifndef OUTFILE
  !define OUTFILE "rigdeck-${VERSION}-setup.exe"
!endif
!ifndef ICON
  !define ICON "../../launchers/icons/rigdeck.ico"
!endif

!define APP_KEY "Software\Rigdeck"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Rigdeck"
; the value app/autostart.py writes for "Start Rigdeck in the tray at login"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUN_VALUE "Rigdeck"

Name "Rigdeck ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\Rigdeck"
InstallDirRegKey HKCU "${APP_KEY}" "InstallDir"
SetCompressor /SOLID lzma

!include "MUI2.nsh"
!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\rigdeck-gui.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start Rigdeck"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "Rigdeck" SecProgram
  SectionIn RO
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  File /r "${BUNDLE}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\Rigdeck.lnk" "$INSTDIR\rigdeck-gui.exe" "" "$INSTDIR\rigdeck-gui.exe" 0
  WriteRegStr HKCU "${APP_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "Rigdeck"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "Rigdeck developers"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\rigdeck-gui.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  SetShellVarContext current
  CreateShortcut "$DESKTOP\Rigdeck.lnk" "$INSTDIR\rigdeck-gui.exe" "" "$INSTDIR\rigdeck-gui.exe" 0
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\Rigdeck.lnk"
  Delete "$DESKTOP\Rigdeck.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "${APP_KEY}"
  ; only what the installer put there: a folder the user chose may hold other files
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\rigdeck.exe"
  Delete "$INSTDIR\rigdeck-gui.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
